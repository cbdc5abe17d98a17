"""The emulator's fidelity layer: moto, made to behave like AWS where our code depends on it.

Each module patches one service and says in its docstring what AWS does, what moto does,
and what the patch changes. `install()` applies them all; `tools/moto_fidelity_server.py`
calls it before it starts moto's server.

- `dynamodb_atomic`: conditional writes are atomic.
- `dynamodb_index_keys`: an index key of the wrong type refuses the write (the whole batch).
- `dynamodb_streams`: a stream keeps its records (24 h), whoever reads it; no synchronous
  delivery to event source mappings.
- `ssm_documents`: documents created by CloudFormation keep their text.
- `ssm_agent`: an agent that runs Command documents for real on managed nodes
  (`ssm_nodes`: which instances those are; `ssm_parameters`: the checks before a run).
- `rds_mariadb`: RDS MySQL instances are real MariaDB servers with real replication
  (`mariadb_server`: one server process).
- `stepfunctions`: state machines execute; Lambda tasks reach the real function binaries.
- `events_targets`: EventBridge rules start the state machines they target.
- `rpcv2_cbor`: CloudWatch speaks the RPC v2 CBOR protocol current SDKs use.

Everything the layer starts (MariaDB servers, document scripts) is a child that dies with
the emulator (`keeper`), and all its files live under `FIDELITY_STATE_DIR` (`state`).
"""


def install():
    from . import (
        dynamodb_atomic,
        dynamodb_index_keys,
        dynamodb_streams,
        events_targets,
        rds_mariadb,
        rpcv2_cbor,
        ssm_agent,
        ssm_documents,
        stepfunctions,
    )

    modules = (
        rpcv2_cbor,
        dynamodb_atomic,
        dynamodb_index_keys,
        dynamodb_streams,
        ssm_documents,
        ssm_agent,
        rds_mariadb,
        stepfunctions,
        events_targets,
    )
    for module in modules:
        module.install()
