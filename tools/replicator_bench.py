"""The stream-replicator benchmark: our release binary and the boto3 `batch_writer` peer
(tools/replicator_peer.py), each run as Lambda runs it (its own process, a local Runtime
API), on the same events, against the same targets:

  loopback-<ms>  tools/bench/target.py: answers BatchWriteItem after <ms> ms (the latency a
                 table in another region adds), counts requests, enforces DynamoDB's batch rules
  emulator       the moto emulator's DynamoDB (tools/moto_fidelity_server.py)

Workloads (tools/bench/workload.py): 1,000 records, and as many as fit in Lambda's 6 MB
payload; ~1 KB items; INSERT/MODIFY/REMOVE; each also with 50 % repeated keys. Before
every run the target holds the state before the batch; after it, it must hold exactly the
state after the batch. One process per implementation, workload and target handles the
batch `--runs` times (a warm Lambda environment receiving batch after batch).

Prints, per implementation (ours | peer), target and workload:

  BENCH replicator.<impl>.<target>.<workload>.wall_ms.{min,median,max} <n> ms
        (event handed over -> answer posted)
  BENCH replicator.<impl>.<target>.<workload>.write_requests <n> requests   (loopback only)
  BENCH replicator.<impl>.<target>.<workload>.peak_rss_mb.{first_batch,last_batch} <n> MB  (VmHWM)
  BENCH replicator.<impl>.<target>.<workload>.mismatched_items <n> items
  BENCH replicator.speedup.<target>.<workload> <peer median / our median> x
  BENCH replicator.<impl>.init_ms.<target>[.key_schema_configured|.key_schema_described] <n> ms
then one TARGET line per goal of the issue (met or MISSED). Exits 1 when a batch failed,
the target is not in the expected state, our request count is not the 25-per-call
minimum, or init called DescribeTable although KEY_ATTRIBUTES was set.

Usage: python tools/replicator_bench.py --bin BIN --peer-python PY [--moto-python PY]
       [--runs 3] [--targets loopback-0,loopback-10,loopback-50,emulator]
       [--workloads 1000,1000-repeated,6mb,6mb-repeated] [--drop-every N (test-only)]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from decimal import Decimal

from bench import workload as workloads
from bench.emulator import Emulator
from bench.runtime_api import RuntimeApi, peak_rss_mb
from bench.target import MAX_REQUESTS_PER_CALL, LoopbackTable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RSS_LIMIT_MB = 64
SPEEDUP_GOAL = 2.0


def template_default(parameter):
    """A parameter's default in infra/template.yaml: the benchmark runs what users deploy."""
    with open(os.path.join(ROOT, "infra", "template.yaml")) as f:
        match = re.search(rf"^  {parameter}:\n(?:    .*\n)*?    Default: (\S+)", f.read(), re.M)
    return match.group(1).strip("'\"")


def canonical(value):
    """DynamoDB JSON with numbers compared by value and sets as sets."""
    (kind, inner), = value.items()
    if kind == "N":
        return ("N", Decimal(inner).normalize())
    if kind in ("SS", "BS"):
        return (kind, frozenset(inner))
    if kind == "NS":
        return (kind, frozenset(Decimal(n).normalize() for n in inner))
    if kind == "M":
        return ("M", tuple(sorted((k, canonical(v)) for k, v in inner.items())))
    if kind == "L":
        return ("L", tuple(canonical(v) for v in inner))
    return (kind, inner)


def mismatched(actual, expected):
    """Keys whose item differs from the expected one, or is there and should not be, or not."""
    wrong = 0
    for key in actual.keys() | expected.keys():
        a, e = actual.get(key), expected.get(key)
        if a is None or e is None or canonical({"M": a}) != canonical({"M": e}):
            wrong += 1
    return wrong


class EmulatorTable:
    """The moto emulator's DynamoDB as a target (no request counts: it does not keep them)."""

    def __init__(self, moto_python):
        import boto3

        self.emulator = Emulator(moto_python)
        self.client = boto3.client("dynamodb", region_name="us-west-2", endpoint_url=self.endpoint,
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

    @property
    def endpoint(self):
        return self.emulator.endpoint

    def reset(self, items):
        tables = self.client.list_tables()["TableNames"]
        if workloads.TABLE in tables:
            self.client.delete_table(TableName=workloads.TABLE)
        self.client.create_table(
            TableName=workloads.TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in workloads.KEY_ATTRIBUTES],
        )
        values = list(items.values())
        for start in range(0, len(values), MAX_REQUESTS_PER_CALL):
            requests = [{"PutRequest": {"Item": item}} for item in values[start:start + MAX_REQUESTS_PER_CALL]]
            self.client.batch_write_item(RequestItems={workloads.TABLE: requests})

    def snapshot(self):
        items = {}
        for page in self.client.get_paginator("scan").paginate(TableName=workloads.TABLE):
            for item in page["Items"]:
                items[workloads.key_of(item)] = item
        return items, None

    def close(self):
        self.emulator.close()


def common_env(runtime_api, endpoint):
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": "bench-replicator",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_REGION": "us-west-2",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "TARGET_TABLE_NAME": workloads.TABLE,
        "TARGET_REGION": "us-west-2",
        "KEY_ATTRIBUTES": ",".join(workloads.KEY_ATTRIBUTES),
    }


def ours(args, runtime_api, endpoint, key_schema=True):
    env = {
        **common_env(runtime_api, endpoint),
        "AWS_LAMBDA_LOG_LEVEL": "warn",
        "SOURCE_TABLE_NAME": workloads.TABLE,
        "SOURCE_REGION": "us-east-1",
        "DEAD_LETTER_BUCKET": "shop-failover-dead-letter",
        "WRITE_CONCURRENCY": template_default("WriteConcurrency"),
        "DEADLINE_MARGIN_SECONDS": "10",
    }
    if not key_schema:
        del env["KEY_ATTRIBUTES"]
    return [args.bin], env


def peer(args, runtime_api, endpoint, key_schema=True):
    return [args.peer_python, os.path.join(ROOT, "tools/replicator_peer.py")], common_env(runtime_api, endpoint)


IMPLEMENTATIONS = {"ours": ours, "peer": peer}


class Failures:
    def __init__(self):
        self.messages = []

    def add(self, message):
        print(f"FAILED {message}", file=sys.stderr)
        self.messages.append(message)


def start(args, impl, target, key_schema=True):
    """Starts the implementation's process against its own Runtime API; (api, process, init ms)."""
    api = RuntimeApi()
    command, env = IMPLEMENTATIONS[impl](args, api.address, target.endpoint, key_schema)
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = api.wait_for_first_request(process)
    if first is None:
        stop(api, process)
        raise RuntimeError(f"{command[0]} did not start: {process.stderr.read().decode(errors='replace')[-2000:]}")
    return api, process, (first - started) * 1000


def stop(api, process):
    process.kill()
    process.wait()
    api.close()


def measure(args, impl, target_name, target, workload, failures, results):
    """Runs one workload `args.runs` times in one process; prints and keeps its figures."""
    label = f"replicator.{impl}.{target_name}.{workload.name}"
    target.reset(workload.before)
    api, process, init_ms = start(args, impl, target)
    walls, requests, rss, wrong = [], [], [], []
    try:
        _, init_counts = target.snapshot()
        results.setdefault(("init", impl, target_name), init_ms)
        if impl == "ours" and init_counts and init_counts.get("DescribeTable"):
            failures.add(f"{label}: init called DescribeTable {init_counts['DescribeTable']} times with KEY_ATTRIBUTES set")
        for _ in range(args.runs):
            target.reset(workload.before)
            kind, ms, body = api.invoke(workload.event_bytes)
            if kind != "response" or '"batchItemFailures":[]' not in body.replace(" ", ""):
                failures.add(f"{label}: the batch was not handled whole ({kind}): {body[:500]}")
            walls.append(ms)
            rss.append(peak_rss_mb(process.pid))
            items, counts = target.snapshot()
            wrong.append(mismatched(items, workload.after))
            if counts is not None:
                requests.append(counts.get("BatchWriteItem", 0))
    finally:
        stop(api, process)
    print(f"BENCH {label}.wall_ms.min {min(walls):.1f} ms")
    print(f"BENCH {label}.wall_ms.median {statistics.median(walls):.1f} ms")
    print(f"BENCH {label}.wall_ms.max {max(walls):.1f} ms")
    if requests:
        print(f"BENCH {label}.write_requests {max(requests)} requests")
    print(f"BENCH {label}.peak_rss_mb.first_batch {rss[0]:.1f} MB")
    print(f"BENCH {label}.peak_rss_mb.last_batch {rss[-1]:.1f} MB")
    print(f"BENCH {label}.mismatched_items {max(wrong)} items", flush=True)
    if max(wrong):
        failures.add(f"{label}: {max(wrong)} items of the target differ from the state after the batch")
    minimum = -(-workload.keys_changed // MAX_REQUESTS_PER_CALL)
    if impl == "ours" and requests and max(requests) != minimum:
        failures.add(f"{label}: {max(requests)} BatchWriteItem calls for {workload.keys_changed} changed keys, not {minimum}")
    results[(impl, target_name, workload.name)] = {"median": statistics.median(walls), "rss": rss[-1]}


def init_without_key_schema(args, target_name, target, failures):
    """Our init when the key schema must be learned from the table (DescribeTable)."""
    target.reset({})
    api, process, init_ms = start(args, "ours", target, key_schema=False)
    stop(api, process)
    _, counts = target.snapshot()
    print(f"BENCH replicator.ours.init_ms.{target_name}.key_schema_described {init_ms:.1f} ms")
    if counts is not None and counts.get("DescribeTable") != 1:
        failures.add(f"init without KEY_ATTRIBUTES made {counts.get('DescribeTable', 0)} DescribeTable calls, not 1")


def open_target(name, args):
    if name == "emulator":
        if not args.moto_python:
            raise SystemExit("the emulator target needs --moto-python")
        return EmulatorTable(args.moto_python)
    match = re.fullmatch(r"loopback-(\d+)", name)
    if not match:
        raise SystemExit(f"unknown target {name!r}: loopback-<ms> or emulator")
    return LoopbackTable(delay_ms=int(match.group(1)), drop_every=args.drop_every)


def report_goals(results, target_names):
    """The issue's goals, from what was measured."""
    for target_name in target_names:
        for workload in ("6mb", "6mb-repeated"):
            ours_figures = results.get(("ours", target_name, workload))
            peer_figures = results.get(("peer", target_name, workload))
            if not (ours_figures and peer_figures):
                continue
            if target_name in ("loopback-10", "loopback-50"):
                speedup = peer_figures["median"] / ours_figures["median"]
                verdict = "met" if speedup >= SPEEDUP_GOAL else "MISSED"
                print(f"TARGET {workload} at {target_name}: ours {speedup:.1f}x faster than the peer (goal >= {SPEEDUP_GOAL}x): {verdict}")
            if workload == "6mb":
                rss = ours_figures["rss"]
                verdict = "met" if rss <= RSS_LIMIT_MB else "MISSED"
                print(f"TARGET 6mb at {target_name}: our peak RSS {rss:.1f} MB (goal <= {RSS_LIMIT_MB} MB): {verdict}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True, help="the stream-replicator binary (release)")
    parser.add_argument("--peer-python", required=True, help="the peer venv's python (boto3)")
    parser.add_argument("--moto-python", help="the emulator venv's python (for the emulator target)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--targets", default="loopback-0,loopback-10,loopback-50,emulator")
    parser.add_argument("--workloads", default="1000,1000-repeated,6mb,6mb-repeated")
    parser.add_argument("--drop-every", type=int, default=0, help="test-only: the loopback target loses every Nth put")
    args = parser.parse_args()

    wanted = args.workloads.split(",")
    chosen = [w for w in workloads.standard() if w.name in wanted]
    unknown = set(wanted) - {w.name for w in chosen}
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    for w in chosen:
        print(f"BENCH replicator.workload.{w.name}.records {w.records} records")
        print(f"BENCH replicator.workload.{w.name}.event_bytes {len(w.event_bytes)} bytes")
        print(f"BENCH replicator.workload.{w.name}.keys_changed {w.keys_changed} keys")
    failures, results = Failures(), {}
    target_names = args.targets.split(",")
    for target_name in target_names:
        target = open_target(target_name, args)
        try:
            for w in chosen:
                for impl in IMPLEMENTATIONS:
                    measure(args, impl, target_name, target, w, failures, results)
                peer_median = results[("peer", target_name, w.name)]["median"]
                ours_median = results[("ours", target_name, w.name)]["median"]
                print(f"BENCH replicator.speedup.{target_name}.{w.name} {peer_median / ours_median:.2f} x")
            for impl in IMPLEMENTATIONS:
                suffix = ".key_schema_configured" if impl == "ours" else ""
                print(f"BENCH replicator.{impl}.init_ms.{target_name}{suffix} {results[('init', impl, target_name)]:.1f} ms")
            if isinstance(target, LoopbackTable):
                init_without_key_schema(args, target_name, target, failures)
        finally:
            target.close()
    report_goals(results, target_names)
    if failures.messages:
        print(f"{len(failures.messages)} checks failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
