"""Parts the benchmarks share: a local Lambda Runtime API, the replicator's workloads and
targets (see tools/replicator_bench.py and tools/lambda_bench.py)."""
