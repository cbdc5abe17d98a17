"""Measures the four functions as Lambda would run them, with a local Runtime API.

For each function it starts the native release binary with AWS_LAMBDA_RUNTIME_API pointing
at a Runtime API served here (the emulator behind the AWS calls), and prints:

  BENCH <function>.zip_bytes <n> bytes           size of the arm64 bootstrap.zip
  BENCH <function>.init_ms <n> ms                process start -> first request for an event
  BENCH <function>.warm_ms.<event> <n> ms        median of 5 warm invocations of each sample event
  BENCH <function>.peak_rss_mb <n> MB            VmHWM of the process after all invocations

Usage: python tools/lambda_bench.py --bin-dir DIR --zip-dir DIR --moto-python PY --repo ROOT
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench.emulator import Emulator
from bench.runtime_api import RuntimeApi, peak_rss_mb

WARM_RUNS = 5

FUNCTIONS = {
    "rds-promoter": [
        "alarm-state-change-to-alarm.json",
        "alarm-action-direct-to-alarm.json",
        "alarm-state-change-to-ok.json",
        "alarm-state-change-to-insufficient-data.json",
    ],
    "stream-replicator": ["dynamodb-stream-batch.json"],
    "env-rewriter": ["parameter-store-change.json"],
    "health-monitor": ["scheduled-event.json"],
}


def provision(endpoint, state_dir):
    import boto3

    kw = dict(endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
    ddb = {r: boto3.client("dynamodb", region_name=r, **kw) for r in ("us-east-1", "us-west-2")}
    keys = dict(
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    pk_only = dict(
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for region, client in ddb.items():
        client.create_table(TableName="shop-data", **keys)
        client.create_table(TableName="shop-heartbeats", **pk_only)
    ddb["us-west-2"].create_table(TableName="shop-failover-state", **pk_only)
    boto3.client("s3", region_name="us-east-1", **kw).create_bucket(Bucket="shop-failover-dead-letter")
    rds_a = boto3.client("rds", region_name="us-east-1", **kw)
    primary = rds_a.create_db_instance(
        DBInstanceIdentifier="shop-db", Engine="mysql", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
        MasterUsername="shopadmin", MasterUserPassword="not-a-real-password-1", BackupRetentionPeriod=7,
    )["DBInstance"]["DBInstanceArn"]
    rds_a.get_waiter("db_instance_available").wait(
        DBInstanceIdentifier="shop-db", WaiterConfig={"Delay": 1, "MaxAttempts": 90}
    )  # a real MariaDB server behind it; a replica needs an available source
    boto3.client("rds", region_name="us-west-2", **kw).create_db_instance_read_replica(
        DBInstanceIdentifier="shop-db-replica", SourceDBInstanceIdentifier=primary, DBInstanceClass="db.t3.micro"
    )
    servers = boto3.client("ec2", region_name="us-west-2", **kw).run_instances(
        ImageId="ami-12c6146b", MinCount=2, MaxCount=2,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "App", "Value": "Magento"}, {"Key": "Environment", "Value": "bench"}]}],
    )["Instances"]
    for server in servers:  # managed nodes of the emulator's SSM agent (env-rewriter runs dry)
        os.makedirs(os.path.join(state_dir, "nodes", server["InstanceId"], "root"))
    boto3.client("ssm", region_name="us-west-2", **kw).put_parameter(
        Name="/shop/failover/active-region", Value="us-west-2", Type="String"
    )


def function_env(endpoint, runtime_api, name):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_LEVEL": "warn",
        "AWS_REGION": "us-west-2",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "DRY_RUN": "true",
        "PRIMARY_REGION": "us-east-1",
        "SECONDARY_REGION": "us-west-2",
        "REPLICA_IDENTIFIER": "shop-db-replica",
        "REPLICA_REGION": "us-west-2",
        "ALLOWED_ALARM_PREFIXES": "shop-failover-",
        "FAILOVER_REGION": "us-west-2",
        "PARAMETER_PREFIX": "/shop/failover",
        "STATE_TABLE": "shop-failover-state",
        "HEARTBEAT_TABLE": "shop-heartbeats",
        "RUN_SECONDS": "0",  # one check round per invocation, as the benchmark times one
        "APP_REGION": "us-west-2",
        "ENVIRONMENT": "bench",
        "DOCUMENT_NAME": "shop-failover-repoint-app",
        "ENV_FILE": "/etc/shop/failover.env",
        "SOURCE_TABLE_NAME": "shop-data",
        "SOURCE_REGION": "us-east-1",
        "TARGET_TABLE_NAME": "shop-data",
        "TARGET_REGION": "us-west-2",
        "DEAD_LETTER_BUCKET": "shop-failover-dead-letter",
    }
    return env


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--zip-dir", required=True)
    parser.add_argument("--moto-python", required=True)
    parser.add_argument("--repo", required=True)
    args = parser.parse_args()

    emulator = Emulator(args.moto_python)
    endpoint = emulator.endpoint
    try:
        provision(endpoint, emulator.state.name)
        failures = 0
        for name, events in FUNCTIONS.items():
            zip_path = os.path.join(args.zip_dir, name, "bootstrap.zip")
            if os.path.exists(zip_path):
                print(f"BENCH {name}.zip_bytes {os.path.getsize(zip_path)} bytes")
            api = RuntimeApi()
            started = time.monotonic()
            process = subprocess.Popen(
                [os.path.join(args.bin_dir, name)], env=function_env(endpoint, api.address, name),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            try:
                if api.wait_for_first_request(process) is None:
                    print(f"{name} did not start: {process.stderr.read().decode(errors='replace')}", file=sys.stderr)
                    failures += 1
                    continue
                print(f"BENCH {name}.init_ms {(api.first_next - started) * 1000:.1f} ms")
                for event_file in events:
                    with open(os.path.join(args.repo, "events", event_file)) as f:
                        event = json.load(f)
                    timings = []
                    for _ in range(WARM_RUNS + 1):
                        kind, ms, body = api.invoke(event)
                        if kind != "response":
                            print(f"{name} {event_file} failed: {body}", file=sys.stderr)
                            failures += 1
                        timings.append(ms)
                    label = event_file.removesuffix(".json")
                    print(f"BENCH {name}.warm_ms.{label} {statistics.median(timings[1:]):.2f} ms")
                print(f"BENCH {name}.peak_rss_mb {peak_rss_mb(process.pid):.1f} MB")
            finally:
                process.kill()
                process.wait()
                api.close()
        return 1 if failures else 0
    finally:
        emulator.close()


if __name__ == "__main__":
    sys.exit(main())
