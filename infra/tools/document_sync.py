"""Keeps the SSM document in infra/core.yaml equal to infra/ssm/repoint-app-document.json.

CloudFormation cannot include a file, so the document that env-rewriter sends is written out
in the template's RepointDocument.Content. This check loads the template with cfn-lint's
CloudFormation-aware YAML loader (short-form intrinsics such as !Ref and !Sub are understood)
and compares the Content with the JSON file as values, not as text.

  python infra/tools/document_sync.py          # check: exit 1 and a diff when they differ
  python infra/tools/document_sync.py --write  # rewrite the Content block from the JSON file

Run with the lint venv's Python (.venv/infra), which has cfn-lint.
"""

import difflib
import json
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "core.yaml"
DOCUMENT = ROOT / "infra" / "ssm" / "repoint-app-document.json"
RESOURCE = "RepointDocument"
CONTENT_INDENT = 6  # "      Content:" under "  RepointDocument:" / "    Properties:"


def plain(value):
    """cfn-lint's loader returns str/dict/list subclasses that carry line marks; compare plain values."""
    return json.loads(json.dumps(value))


def template_content():
    template = cfn_yaml.load(str(TEMPLATE))
    resource = template.get("Resources", {}).get(RESOURCE)
    if resource is None:
        sys.exit(f"{TEMPLATE}: no resource {RESOURCE}")
    if resource.get("Type") != "AWS::SSM::Document":
        sys.exit(f"{TEMPLATE}: {RESOURCE} is a {resource.get('Type')}, not an AWS::SSM::Document")
    return plain(resource.get("Properties", {}).get("Content"))


def check():
    expected = json.loads(DOCUMENT.read_text())
    actual = template_content()
    if actual == expected:
        print(f"document in sync: {TEMPLATE.relative_to(ROOT)} {RESOURCE}.Content == {DOCUMENT.relative_to(ROOT)}")
        return 0
    diff = difflib.unified_diff(
        json.dumps(expected, indent=2, sort_keys=True).splitlines(),
        json.dumps(actual, indent=2, sort_keys=True).splitlines(),
        str(DOCUMENT.relative_to(ROOT)),
        f"{TEMPLATE.relative_to(ROOT)} {RESOURCE}.Content",
        lineterm="",
    )
    lines = list(diff)
    print("\n".join(lines[:80] + ([f"... {len(lines) - 80} more diff lines"] if len(lines) > 80 else [])), file=sys.stderr)
    print(
        f"{TEMPLATE.relative_to(ROOT)}: {RESOURCE}.Content differs from {DOCUMENT.relative_to(ROOT)}; "
        "run: .venv/infra/bin/python infra/tools/document_sync.py --write",
        file=sys.stderr,
    )
    return 1


def write():
    """Replaces the Content block (the Content: line and everything indented deeper) in place."""
    lines = TEMPLATE.read_text().splitlines(keepends=True)
    start = None
    in_resource = False
    for i, line in enumerate(lines):
        if line.startswith(f"  {RESOURCE}:"):
            in_resource = True
        elif in_resource and line.startswith(" " * CONTENT_INDENT + "Content:"):
            start = i
            break
        elif in_resource and line.strip() and len(line) - len(line.lstrip()) <= 2:
            break
    if start is None:
        sys.exit(f"{TEMPLATE}: no '{' ' * CONTENT_INDENT}Content:' line in {RESOURCE}")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > CONTENT_INDENT):
        end += 1
    # Blank lines that end the block belong to what follows.
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    # JSON is valid YAML: the block reads like the file it must equal.
    body = json.dumps(json.loads(DOCUMENT.read_text()), indent=2, ensure_ascii=True)
    pad = " " * (CONTENT_INDENT + 2)
    block = [" " * CONTENT_INDENT + "Content:\n"] + [pad + line + "\n" for line in body.splitlines()]
    TEMPLATE.write_text("".join(lines[:start] + block + lines[end:]))
    return check()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args not in ([], ["--write"]):
        sys.exit(__doc__)
    sys.exit(write() if args == ["--write"] else check())
