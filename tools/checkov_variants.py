"""Writes copies of infra/template.yaml and infra/core.yaml whose parameter defaults select
other deployments, so that checkov scans every conditional resource.

checkov resolves CloudFormation Conditions with the parameters' default values and skips
resources whose condition is false. As written, the templates default to the secondary
stack with no optional features, so the primary stack (stream-replicator, DB alarm, event
forwarding) and the optional Route 53, RDS replica, S3 and Global Table resources would
never be checked. Each variant below changes only `Default:` lines.

  python tools/checkov_variants.py OUT_DIR   # writes OUT_DIR/<variant>/{template,core}.yaml
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("template.yaml", "core.yaml")

VARIANTS = {
    "primary": {
        "StackRole": "primary",
        "DataTableStreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/shop-data/stream/2026-01-01T00:00:00.000",
    },
    "secondary-all-options": {
        "DataReplication": "global-table",
        "HostedZoneId": "Z0123456789ABCDEFGHIJ",
        "ShopHostName": "www.example.com",
        "PrimaryEndpoint": "shop-primary.example.com",
        "SecondaryEndpoint": "shop-secondary.example.com",
        "CreateReadReplica": '"true"',
        "ReplicaKmsKeyId": "arn:aws:kms:us-west-2:123456789012:key/00000000-0000-0000-0000-000000000000",
        "MediaSourceBucketName": "shop-media",
        "NotificationTopicArn": "arn:aws:sns:us-west-2:123456789012:on-call",
    },
}


def with_defaults(text, defaults, name):
    for parameter, value in defaults.items():
        # "  Parameter:" then its indented body; replace (or add) its Default line.
        block = re.search(rf"^  {parameter}:\n((?:    .*\n)+)", text, re.MULTILINE)
        if block is None:
            continue
        body = block.group(1)
        if re.search(r"^    Default: .*$", body, re.MULTILINE):
            new_body = re.sub(r"^    Default: .*$", f"    Default: {value}", body, count=1, flags=re.MULTILINE)
        else:
            new_body = body + f"    Default: {value}\n"
        text = text[: block.start(1)] + new_body + text[block.end(1) :]
    if "Parameters:" not in text:
        sys.exit(f"{name}: no Parameters section")
    return text


def main(out):
    for variant, defaults in VARIANTS.items():
        target = out / variant
        target.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            source = (ROOT / "infra" / name).read_text()
            (target / name).write_text(with_defaults(source, defaults, name))
        print(target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
