"""The peer the replicator benchmark compares against: the Python handler the DynamoDB
Streams replication tutorials write, with boto3's `Table.batch_writer`
(`overwrite_by_pkeys`, which drops a key's earlier request within one 25-item buffer), run
as Lambda runs it: a loop that takes each event from the Runtime API
(AWS_LAMBDA_RUNTIME_API) and posts the handler's answer.

Environment: TARGET_TABLE_NAME, TARGET_REGION, KEY_ATTRIBUTES (comma-separated), and the
usual AWS_ENDPOINT_URL / credentials. Run with the peer venv (boto3 only).
"""

import json
import os
import traceback
import urllib.request

import boto3
from boto3.dynamodb.types import TypeDeserializer

deserializer = TypeDeserializer()
table = boto3.resource("dynamodb", region_name=os.environ["TARGET_REGION"]).Table(os.environ["TARGET_TABLE_NAME"])
key_attributes = os.environ["KEY_ATTRIBUTES"].split(",")


def plain(image):
    return {name: deserializer.deserialize(value) for name, value in image.items()}


def handler(event, context):
    with table.batch_writer(overwrite_by_pkeys=key_attributes) as batch:
        for record in event["Records"]:
            change = record["dynamodb"]
            if record["eventName"] == "REMOVE":
                batch.delete_item(Key=plain(change["Keys"]))
            else:
                batch.put_item(Item=plain(change["NewImage"]))
    return {"batchItemFailures": []}


def serve():
    api = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"
    while True:
        with urllib.request.urlopen(f"{api}/next", timeout=None) as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(response.read())
        try:
            answer, path = json.dumps(handler(event, None)).encode(), "response"
        except Exception as error:  # noqa: BLE001 (reported to the Runtime API, as Lambda does)
            answer = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__,
                                 "stackTrace": traceback.format_exc().splitlines()}).encode()
            path = "error"
        urllib.request.urlopen(urllib.request.Request(f"{api}/{request_id}/{path}", data=answer, method="POST")).close()


if __name__ == "__main__":
    serve()
