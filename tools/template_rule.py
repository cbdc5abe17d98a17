"""Prints one EventBridge rule of the SAM template, resolved as CloudFormation would resolve it.

The drill deploys the failover rule as `infra/template.yaml` declares it (the
`EventBridgeRule` event of a state machine or function: its pattern, input transformer and
retry policy), so the rule that starts the region-switch plan is the template's, not the
test's. The template is read with cfn-lint's decoder (CloudFormation's short-form tags), and
the intrinsics the rule uses are evaluated with the stack's parameters (defaults unless
given) and conditions: Ref, Fn::Sub, Fn::Join, Fn::Split, Fn::Select, Fn::If, Fn::Equals,
Fn::Not, Fn::And, Fn::Or, Condition. Anything else is an error naming it.

Usage: python tools/template_rule.py TEMPLATE RESOURCE EVENT [Name=value ...]
Prints {"ruleName", "eventPattern", "inputTransformer", "retryPolicy"} as JSON.
"""

import json
import re
import sys

from cfnlint.decode import decode


class Unsupported(Exception):
    pass


class Stack:
    def __init__(self, template, parameters):
        self.template = template
        self.parameters = {}
        for name, declared in (template.get("Parameters") or {}).items():
            value = parameters.get(name, declared.get("Default"))
            if declared.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [item.strip() for item in value.split(",")]
            self.parameters[name] = value
        self.parameters.setdefault("AWS::Partition", "aws")
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            declared = (self.template.get("Conditions") or {}).get(name)
            if declared is None:
                raise Unsupported(f"no condition {name}")
            self.conditions[name] = bool(self.resolve(declared))
        return self.conditions[name]

    def resolve(self, node):
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                if value not in self.parameters:
                    raise Unsupported(f"Ref {value} (not a parameter)")
                return self.parameters[value]
            if key == "Fn::Sub":
                text, names = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))
                def substitute(match):
                    name = match.group(1)
                    if name in names:
                        return str(names[name])
                    if name in self.parameters:
                        return str(self.parameters[name])
                    raise Unsupported(f"Fn::Sub ${{{name}}}")
                return re.sub(r"\$\{([A-Za-z0-9:._]+)\}", substitute, text)
            if key == "Fn::Join":
                separator, items = self.resolve(value)
                return separator.join(str(item) for item in items)
            if key == "Fn::Split":
                separator, text = self.resolve(value)
                return text.split(separator)
            if key == "Fn::Select":
                index, items = self.resolve(value)
                return items[int(index)]
            if key == "Fn::If":
                name, then, otherwise = value
                return self.resolve(then if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                left, right = self.resolve(value)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(item) for item in value)
            if key == "Fn::Or":
                return any(self.resolve(item) for item in value)
            if key == "Condition":
                return self.condition(value)
            if key.startswith("Fn::"):
                raise Unsupported(key)
        return {key: self.resolve(value) for key, value in node.items()}


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    template_path, resource, event = argv[1:4]
    parameters = dict(argument.split("=", 1) for argument in argv[4:])
    template, matches = decode(template_path)
    if template is None:
        print(f"{template_path}: {[str(m) for m in matches]}", file=sys.stderr)
        return 1
    declared = (template.get("Resources") or {}).get(resource, {}).get("Properties", {}).get("Events", {}).get(event)
    if not declared or declared.get("Type") != "EventBridgeRule":
        print(f"{template_path}: {resource} has no EventBridgeRule event {event}", file=sys.stderr)
        return 1
    stack = Stack(template, parameters)
    properties = declared.get("Properties", {})
    resolved = {}
    for field, key in [
        ("ruleName", "RuleName"),
        ("eventPattern", "Pattern"),
        ("inputTransformer", "InputTransformer"),
        ("retryPolicy", "RetryPolicy"),
    ]:
        try:
            resolved[field] = stack.resolve(properties.get(key))
        except Unsupported as error:
            print(f"{template_path}: {resource}.{event}.{key} uses {error}, which this resolver does not evaluate", file=sys.stderr)
            return 1
    print(json.dumps(resolved))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
