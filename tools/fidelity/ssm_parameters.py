"""Documents and their parameters, checked as SSM checks them before anything runs:
the document and version, unknown or missing parameters, allowedPattern, allowedValues and
lengths; then `{{ name }}` substitution, step timeouts and MaxConcurrency/MaxErrors counts.
"""

import json
import math
import re

from moto.ssm.exceptions import InvalidDocument, ValidationException

from .ssm_errors import InvalidDocumentVersion, InvalidParameters

DEFAULT_EXECUTION_TIMEOUT = 3600
MIN_EXECUTION_TIMEOUT, MAX_EXECUTION_TIMEOUT = 5, 172_800



_RUN_SHELL_SCRIPT = {
    "schemaVersion": "1.2",
    "description": "Run a shell script or specify the commands to run.",
    "parameters": {
        "commands": {
            "type": "StringList",
            "description": "(Required) Specify a shell script or a command to run.",
            "minItems": 1,
            "displayType": "textarea",
        },
        "workingDirectory": {
            "type": "String",
            "default": "",
            "description": "(Optional) The path to the working directory on your instance.",
            "maxChars": 4096,
        },
        "executionTimeout": {
            "type": "String",
            "default": "3600",
            "description": "(Optional) The time in seconds for a command to complete before it is considered to have failed.",
            "allowedPattern": "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)",
        },
    },
    "runtimeConfig": {
        "aws:runShellScript": {
            "properties": [
                {
                    "id": "0.aws:runShellScript",
                    "runCommand": "{{ commands }}",
                    "workingDirectory": "{{ workingDirectory }}",
                    "timeoutSeconds": "{{ executionTimeout }}",
                }
            ]
        }
    },
}


def document_content(backend, name, version):
    """The Command document SendCommand names (name or ARN; $DEFAULT, $LATEST or a number)."""
    if not name:
        raise ValidationException("1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null")
    short = name.split(":document/")[-1] if name.startswith("arn:") else name
    documents = backend._documents.get(short)
    if documents is None:
        if short == "AWS-RunShellScript":
            if version not in (None, "", "$DEFAULT", "$LATEST", "1"):
                raise InvalidDocumentVersion("The document version is not valid or does not exist.")
            return short, _RUN_SHELL_SCRIPT
        raise InvalidDocument(f"Document with name {short} does not exist.")
    if version in (None, "", "$DEFAULT"):
        document = documents.get_default_version()
    elif version == "$LATEST":
        document = documents.get_latest_version()
    else:
        document = documents.find_by_version(str(version))
        if document is None:
            raise InvalidDocumentVersion("The document version is not valid or does not exist.")
    if document.document_type != "Command":
        raise InvalidDocument(f"Document {short} is of type {document.document_type}: SendCommand runs Command documents.")
    content = document.content_json
    if not isinstance(content, dict):
        raise InvalidDocument(f"The content of document {short} is not valid.")
    return short, content


def steps(content):
    """The document's steps as (name, action, inputs, precondition, onFailure)."""
    schema = str(content.get("schemaVersion"))
    if schema in ("2.0", "2.0.1", "2.0.2", "2.0.3", "2.2"):
        return [
            (
                step.get("name", ""),
                step.get("action", ""),
                step.get("inputs") or {},
                step.get("precondition") or step.get("preconditions"),
                step.get("onFailure"),
            )
            for step in content.get("mainSteps") or []
        ]
    if schema in ("1.0", "1.2"):
        steps = []
        for plugin, config in (content.get("runtimeConfig") or {}).items():
            for props in config.get("properties") or []:
                steps.append((plugin, plugin, props, None, None))
        return steps
    raise InvalidDocument(f"Unsupported document schemaVersion {schema}.")


def _single(name, values):
    if len(values) != 1:
        raise InvalidParameters(f'Parameter "{name}" takes one value; {len(values)} were given.')
    return values[0]


def validated_parameters(content, given):
    """SSM's check of SendCommand's Parameters against the document, before anything runs.

    Returns every parameter's value (defaults applied): a str, or a list for StringList.
    """
    declared = content.get("parameters") or {}
    given = given or {}
    if not isinstance(given, dict):
        raise InvalidParameters("Parameters must map each parameter name to a list of values.")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise InvalidParameters(
            f"Parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"{'are' if len(unknown) > 1 else 'is'} not defined in the document."
        )
    values = {}
    for name, spec in declared.items():
        kind = spec.get("type", "String")
        if name not in given:
            if "default" not in spec:
                raise InvalidParameters(f'Parameter "{name}" is required: the document gives it no default.')
            default = spec["default"]
            if kind == "StringList":
                values[name] = [str(v) for v in default] if isinstance(default, list) else [str(default)]
            elif isinstance(default, (dict, list)):
                values[name] = json.dumps(default)
            elif isinstance(default, bool):
                values[name] = "true" if default else "false"
            else:
                values[name] = str(default)
            continue
        raw = given[name]
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise InvalidParameters(f'Parameter "{name}" must be a list of strings.')
        items = raw if kind == "StringList" else [_single(name, raw)]
        if kind == "StringList":
            if "minItems" in spec and len(items) < int(spec["minItems"]):
                raise InvalidParameters(f'Parameter "{name}" needs at least {spec["minItems"]} values.')
            if "maxItems" in spec and len(items) > int(spec["maxItems"]):
                raise InvalidParameters(f'Parameter "{name}" takes at most {spec["maxItems"]} values.')
        for value in items:
            _check_value(name, spec, kind, value)
        values[name] = items if kind == "StringList" else items[0]
    return values


def _check_value(name, spec, kind, value):
    if kind == "Integer" and not re.fullmatch(r"-?[0-9]+", value):
        raise InvalidParameters(f'Parameter "{name}" value "{value}" is not an Integer.')
    if kind == "Boolean" and value not in ("true", "false"):
        raise InvalidParameters(f'Parameter "{name}" value "{value}" is not a Boolean.')
    if "allowedValues" in spec and value not in [str(v) for v in spec["allowedValues"]]:
        raise InvalidParameters(
            f'Parameter "{name}" value "{value}" is not one of the allowed values {spec["allowedValues"]}.'
        )
    if "minChars" in spec and len(value) < int(spec["minChars"]):
        raise InvalidParameters(f'Parameter "{name}" value "{value}" is shorter than {spec["minChars"]} characters.')
    if "maxChars" in spec and len(value) > int(spec["maxChars"]):
        raise InvalidParameters(f'Parameter "{name}" value is longer than {spec["maxChars"]} characters.')
    pattern = spec.get("allowedPattern")
    if pattern:
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise InvalidParameters(
                f'Parameter "{name}": the emulator cannot evaluate allowedPattern {pattern} ({error}); '
                "it uses a Java regex feature Python's re lacks"
            )
        if not compiled.fullmatch(value):
            raise InvalidParameters(f'Parameter "{name}" value "{value}" does not match the allowed pattern {pattern}.')


def substitute(node, values):
    """Replaces `{{ name }}` in step inputs as the agent does (a lone placeholder takes the value's type)."""
    if isinstance(node, dict):
        return {k: substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        out = []
        for item in node:
            replaced = substitute(item, values)
            if isinstance(item, str) and isinstance(replaced, list):
                out.extend(replaced)  # "{{ commands }}" as one element of a list
            else:
                out.append(replaced)
        return out
    if not isinstance(node, str):
        return node
    whole = re.fullmatch(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}", node)
    if whole and whole.group(1) in values:
        return values[whole.group(1)]

    def text(match):
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        return ",".join(value) if isinstance(value, list) else value

    return re.sub(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}", text, node)


def execution_timeout(value) -> int:
    """The agent's reading of timeoutSeconds: 5..172800, anything else (or nothing) is 3600."""
    try:
        number = int(float(value)) if not isinstance(value, str) else int(value.strip())
    except (TypeError, ValueError):
        return DEFAULT_EXECUTION_TIMEOUT
    if number < MIN_EXECUTION_TIMEOUT or number > MAX_EXECUTION_TIMEOUT:
        return DEFAULT_EXECUTION_TIMEOUT
    return number


def count(value, targets, kind):
    """MaxConcurrency/MaxErrors as a number of nodes (validated as the API model does)."""
    text = str(value)
    if kind == "MaxConcurrency":
        pattern = r"([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)"
    else:
        pattern = r"([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)"
    if not re.fullmatch(pattern, text):
        member = "maxConcurrency" if kind == "MaxConcurrency" else "maxErrors"
        raise ValidationException(
            f"1 validation error detected: Value '{text}' at '{member}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: ^{pattern}$"
        )
    if text.endswith("%"):
        share = int(text[:-1]) * targets / 100
        return max(1, math.ceil(share)) if kind == "MaxConcurrency" else math.floor(share)
    return int(text)

