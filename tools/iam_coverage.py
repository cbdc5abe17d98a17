"""Fails when a function's code calls an AWS API that its IAM role in infra/core.yaml does not allow.

A missing action does not show in any local test (the emulator does not enforce IAM, the
SDK mocks do not either): in AWS the call fails with AccessDenied, and a function that treats
the error as "not there" (health-monitor reading the failback approval) fails silently. So
the actions are derived from the code, not from a hand-kept list:

1. Functions and roles come from infra/template.yaml: every AWS::Serverless::Function's
   CodeUri is its crate, its Role a `Core.Outputs.<X>RoleArn`, which core.yaml's Outputs map
   to the role resource. Every crate under functions/ must be deployed by the template.
2. The calls of a function are the SDK fluent calls `.<operation>()` in
   - its own crate's src/ (test modules removed; its own adapters live there), and
   - the core's adapters (shared/src/parameters) it uses: an adapter counts when the crate
     names it, and an `impl Trait for Adapter` block only when the crate names the trait
     (rds-promoter uses SsmParameters only as a ParameterWriter, so it needs PutParameter,
     not GetParameters). Inherent `impl Adapter` blocks and free functions always count.
   A name counts as a call when it is the snake_case name of an operation of an SDK the
   crate depends on (`aws-sdk-*` in its Cargo.toml); botocore's service models, which the
   Rust SDK is generated from too, give the operations and the IAM action names
   (`get_parameters` -> `ssm:GetParameters`). Comments and string literals are ignored.
3. The template adds what Lambda itself does with the role: log writes, reading a DynamoDB
   stream for an event source mapping, sending to an SQS on-failure destination, X-Ray
   segments when tracing is active (in the template or in the crate's cargo-lambda metadata).
4. Every AWS::Serverless::StateMachine's definition (DefinitionUri) is read the same way: each
   Task's service integration (`arn:aws:states:::lambda:invoke`, `...:::sns:publish`,
   `...:::aws-sdk:<service>:<operation>`) is an action its role (Role: a Core output) needs,
   and its Logging and Tracing add what Step Functions does with the role.
5. Every action must be allowed by an `Allow` statement of the role's inline policies
   (wildcards such as `ssm:Get*` are honoured). Resources and conditions are not compared:
   the check is about actions; their scoping is reviewed in core.yaml.

  python tools/iam_coverage.py          # check; exit 1 naming each missing action
  python tools/iam_coverage.py --list   # also print every function's actions and their origin
  python tools/iam_coverage.py --core F # check the roles of another core template (the lint's defect test)

Run with a Python that has cfn-lint and botocore: the lint venv (.venv/infra) or the emulator
venv (.venv/emulator); scripts/lint-infra.sh runs it with the lint venv.
"""

import fnmatch
import json
import re
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import botocore
import botocore.session
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "template.yaml"
CORE = ROOT / "infra" / "core.yaml"
FUNCTIONS = ROOT / "functions"
SHARED = ROOT / "shared"
ADAPTERS = SHARED / "src" / "parameters"
SHARED_CRATE = "failover_core"

# IAM action names equal the API operation names for the services used here (DynamoDB,
# DynamoDB Streams, SSM, RDS, EC2). Operations whose IAM action is named differently go here,
# e.g. "s3:ListObjectsV2": "s3:ListBucket".
IAM_ACTION_EXCEPTIONS = {"s3:ListObjectsV2": "s3:ListBucket", "lambda:Invoke": "lambda:InvokeFunction"}

# Services whose IAM action prefix differs from their signing name (CloudWatch signs as
# `monitoring`, its actions are `cloudwatch:*`).
IAM_PREFIXES = {"monitoring": "cloudwatch"}

# aws-sdk-<crate> suffixes whose botocore service name differs.
BOTOCORE_NAMES = {"sfn": "stepfunctions"}

# Step Functions' optimized integrations (`arn:aws:states:::<service>:<name>`) and their actions.
OPTIMIZED_INTEGRATIONS = {
    "lambda:invoke": "lambda:InvokeFunction",
    "sns:publish": "sns:Publish",
    "sqs:sendMessage": "sqs:SendMessage",
    "states:startExecution": "states:StartExecution",
    "dynamodb:getItem": "dynamodb:GetItem",
    "dynamodb:putItem": "dynamodb:PutItem",
    "dynamodb:updateItem": "dynamodb:UpdateItem",
}
# What Step Functions does with the role for CloudWatch Logs delivery and X-Ray tracing.
SFN_LOG_DELIVERY = (
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
)
SFN_XRAY = ("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets")

LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
STREAM_READ = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")
XRAY = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
DESTINATION_ACTIONS = {
    "SQS": "sqs:SendMessage",
    "SNS": "sns:Publish",
    "Lambda": "lambda:InvokeFunction",
    "EventBridge": "events:PutEvents",
}


def fail(message):
    sys.exit(f"iam_coverage: {message}")


# ------------------------------------------------------------------ Rust sources


def _blank(text):
    return "".join("\n" if ch == "\n" else " " for ch in text)


CHAR_LITERAL = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'\n])'")
RAW_STRING = re.compile(r'b?r(#*)"')


def code_only(text):
    """Rust source with comments and the insides of string and char literals blanked
    (newlines kept, so offsets and line numbers stay), for regexes and brace matching."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(_blank(text[i:end]))
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(_blank(text[i:j]))
            i = j
        elif c in "rb" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) and RAW_STRING.match(text, i):
            m = RAW_STRING.match(text, i)
            close = '"' + m.group(1)
            end = text.find(close, m.end())
            end = n if end < 0 else end + len(close)
            out.append(m.group(0) + _blank(text[m.end() : end - len(close)]) + close)
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('"' + _blank(text[i + 1 : j]) + '"')
            i = j + 1
        elif c == "'" and CHAR_LITERAL.match(text, i):
            m = CHAR_LITERAL.match(text, i)
            out.append("'" + _blank(m.group(0)[1:-1]) + "'")
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def block_end(code, open_brace):
    """Offset just past the brace that closes the one at `open_brace`."""
    depth = 0
    for j in range(open_brace, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


CFG_TEST = re.compile(r"#\[cfg\(test\)\]")


def without_tests(code):
    """Blanks every item marked #[cfg(test)] (test modules and helpers)."""
    while True:
        m = CFG_TEST.search(code)
        if not m:
            return code
        stop = min((p for p in (code.find("{", m.end()), code.find(";", m.end())) if p >= 0), default=len(code))
        end = block_end(code, stop) if code[stop : stop + 1] == "{" else stop + 1
        code = code[: m.start()] + _blank(code[m.start() : end]) + code[end:]


class RustFile:
    def __init__(self, path):
        self.path = path
        self.code = without_tests(code_only(path.read_text()))

    def line(self, offset):
        return self.code.count("\n", 0, offset) + 1

    def where(self, offset):
        return f"{self.path.relative_to(ROOT)}:{self.line(offset)}"

    def sdk_crates(self):
        return set(re.findall(r"\baws_sdk_(\w+)", self.code))


def rust_files(crate):
    return [RustFile(p) for p in sorted((crate / "src").rglob("*.rs"))]


CALL = re.compile(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)")


# ------------------------------------------------------------------ SDK operations


class Services:
    """Operations of the SDKs, by botocore service name (the aws-sdk-<name> crate suffix)."""

    def __init__(self):
        self.session = botocore.session.get_session()
        self.cache = {}

    def operations(self, service):
        if service not in self.cache:
            try:
                model = self.session.get_service_model(BOTOCORE_NAMES.get(service, service))
            except Exception as err:  # unknown service name
                fail(f"no botocore model for aws-sdk-{service}: {err}")
            prefix = model.signing_name or model.endpoint_prefix
            prefix = IAM_PREFIXES.get(prefix, prefix)
            self.cache[service] = {botocore.xform_name(op): f"{prefix}:{op}" for op in model.operation_names}
        return self.cache[service]

    def resolve(self, name, crate_services, file_services, where):
        """The IAM action of the call `.name()`, or None when it is not an SDK operation."""
        found = {s: self.operations(s)[name] for s in crate_services if name in self.operations(s)}
        if len(found) > 1:
            found = {s: a for s, a in found.items() if s in file_services}
        if not found:
            return None
        if len(found) > 1:
            fail(f"{where}: .{name}() is an operation of several SDKs ({', '.join(sorted(found))}); cannot tell which")
        action = next(iter(found.values()))
        return IAM_ACTION_EXCEPTIONS.get(action, action)


def sdk_services(cargo_toml):
    manifest = tomllib.loads(cargo_toml.read_text())
    names = set()
    for section in ("dependencies",):
        for dep in manifest.get(section, {}):
            if dep.startswith("aws-sdk-"):
                names.add(dep[len("aws-sdk-") :])
    return names, manifest


# ------------------------------------------------------------------ shared adapters

IMPL = re.compile(r"^[ \t]*impl\b", re.M)


def skip_generics(text):
    text = text.lstrip()
    if not text.startswith("<"):
        return text
    depth = 0
    for j, ch in enumerate(text):
        depth += ch == "<"
        depth -= ch == ">"
        if depth == 0:
            return text[j + 1 :]
    return ""


def impl_blocks(rust):
    """(trait or None, type, start, end) of every impl block of a file."""
    blocks = []
    for m in IMPL.finditer(rust.code):
        brace = rust.code.find("{", m.end())
        if brace < 0:
            continue
        header = skip_generics(rust.code[m.end() : brace])
        header = re.sub(r"\bwhere\b.*", "", header, flags=re.S)
        parts = re.split(r"\bfor\b", header, maxsplit=1)
        if len(parts) == 2:
            trait = re.findall(r"(\w+)\s*(?:<.*)?$", parts[0].strip(), flags=re.S)
            typ = re.match(r"\s*(?:[\w:]+::)?(\w+)", parts[1])
            blocks.append((trait[0] if trait else None, typ.group(1) if typ else None, brace, block_end(rust.code, brace)))
        else:
            typ = re.match(r"\s*(?:[\w:]+::)?(\w+)", parts[0])
            blocks.append((None, typ.group(1) if typ else None, brace, block_end(rust.code, brace)))
    return blocks


class Adapters:
    """SDK calls of the core's adapters (shared/src/parameters), by (adapter type, trait or None)."""

    def __init__(self, services):
        self.crate_services, _ = sdk_services(SHARED / "Cargo.toml")
        self.calls = defaultdict(list)  # (type, trait) -> [(action, where)]
        self.types = set()
        for rust in rust_files(SHARED):
            in_adapters = ADAPTERS in rust.path.parents
            blocks = impl_blocks(rust) if in_adapters else []
            file_types = {t for _, t, _, _ in blocks if t}
            if in_adapters:
                self.types |= file_types
            for m in CALL.finditer(rust.code):
                action = services.resolve(m.group(1), self.crate_services, rust.sdk_crates(), rust.where(m.start()))
                if not action:
                    continue
                inside = [(trait, typ) for trait, typ, start, end in blocks if start <= m.start() < end]
                if not in_adapters:
                    # An SDK call outside the adapters: every user of the shared crate may make it.
                    self.calls[("*", None)].append((action, rust.where(m.start())))
                elif inside:
                    trait, typ = inside[-1]
                    self.calls[(typ, trait)].append((action, rust.where(m.start())))
                else:
                    for typ in file_types:
                        self.calls[(typ, None)].append((action, rust.where(m.start())))

    def used_by(self, names):
        """The calls a crate naming `names` (identifiers of its code) can make."""
        used = []
        for (typ, trait), calls in self.calls.items():
            if typ == "*" or (typ in names and (trait is None or trait in names)):
                used.extend(calls)
        unclear = [
            typ
            for typ in self.types & names
            if any(t == typ and trait for (t, trait) in self.calls)
            and not any(t == typ and (trait is None or trait in names) for (t, trait) in self.calls)
        ]
        return used, unclear


# ------------------------------------------------------------------ templates


def plain_sub(value):
    return value if isinstance(value, str) else None


def output_of(role_value):
    """`!GetAtt Core.Outputs.XRoleArn` -> XRoleArn."""
    if isinstance(role_value, dict) and "Fn::GetAtt" in role_value:
        att = role_value["Fn::GetAtt"]
        parts = att.split(".") if isinstance(att, str) else [att[0], *str(att[1]).split(".")]
        if len(parts) == 3 and parts[1] == "Outputs":
            return parts[2]
    return None


def allowed_actions(role):
    actions = []
    for policy in role.get("Properties", {}).get("Policies", []):
        for statement in policy.get("PolicyDocument", {}).get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            action = statement.get("Action", [])
            for a in [action] if isinstance(action, str) else action:
                if not isinstance(a, str):
                    fail(f"cannot read the action {a!r} of policy {policy.get('PolicyName')}")
                actions.append(a)
    return actions


def allows(patterns, action):
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def destinations(config):
    for kind in ("OnFailure", "OnSuccess"):
        target = (config or {}).get(kind) or {}
        if isinstance(target, dict) and target.get("Type") in DESTINATION_ACTIONS:
            yield kind, target["Type"]


def platform_actions(name, properties, globals_, deploy_metadata):
    """What Lambda itself does with the function's role, from the template and the crate."""
    needs = [(a, "Lambda writes the function's logs") for a in LOGS]
    tracing = properties.get("Tracing", globals_.get("Tracing"))
    if tracing == "Active":
        needs += [(a, "template: Tracing Active") for a in XRAY]
    if str(deploy_metadata.get("tracing", "")).lower() == "active":
        needs += [(a, f"functions/{name}/Cargo.toml: cargo-lambda deploy tracing = active") for a in XRAY]
    for kind, target in destinations((properties.get("EventInvokeConfig") or {}).get("DestinationConfig")):
        needs.append((DESTINATION_ACTIONS[target], f"template: EventInvokeConfig {kind} {target}"))
    dlq = properties.get("DeadLetterQueue") or {}
    if dlq.get("Type") in ("SQS", "SNS"):
        needs.append((DESTINATION_ACTIONS[dlq["Type"]], f"template: DeadLetterQueue {dlq['Type']}"))
    for event_name, event in (properties.get("Events") or {}).items():
        props = event.get("Properties") or {}
        if event.get("Type") in ("DynamoDB", "Kinesis"):
            if event["Type"] == "DynamoDB":
                needs += [(a, f"template: event {event_name} reads the stream") for a in STREAM_READ]
            for kind, target in destinations(props.get("DestinationConfig")):
                needs.append((DESTINATION_ACTIONS[target], f"template: event {event_name} {kind} {target}"))
    return needs


def core_role(core, output, where):
    """The AWS::IAM::Role behind `!GetAtt Core.Outputs.<output>`: (logical id, resource)."""
    if not output:
        fail(f"template.yaml {where}: Role is not !GetAtt Core.Outputs.<role>")
    value = core.get("Outputs", {}).get(output, {}).get("Value")
    role_id = (value or {}).get("Fn::GetAtt", [None])
    role_id = role_id.split(".")[0] if isinstance(role_id, str) else role_id[0]
    role = core.get("Resources", {}).get(role_id)
    if not role or role.get("Type") != "AWS::IAM::Role":
        fail(f"core.yaml output {output} is not the Arn of an AWS::IAM::Role")
    return role_id, role


def task_resources(states):
    """Every Task's Resource in a definition, nested Parallel and Map states included."""
    for name, state in (states or {}).items():
        if state.get("Type") == "Task":
            yield name, state.get("Resource", "")
        for branch in state.get("Branches", []):
            yield from task_resources(branch.get("States"))
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from task_resources(state[key].get("States"))


def state_machine_needs(logical, properties, services):
    """The actions a state machine's role needs: its tasks' integrations, logs, tracing."""
    uri = plain_sub(properties.get("DefinitionUri"))
    if not uri:
        fail(f"template.yaml {logical}: DefinitionUri is not a path")
    path = (TEMPLATE.parent / uri).resolve()
    definition = json.loads(path.read_text())
    needs = []
    for state, resource in task_resources(definition.get("States")):
        where = f"{path.relative_to(ROOT)} {state}"
        integration = resource.split(":::", 1)[1] if ":::" in resource else None
        if integration is None:
            needs.append(("lambda:InvokeFunction", f"{where}: function ARN as Resource"))
            continue
        integration = integration.split(".")[0]  # .sync, .waitForTaskToken
        if integration.startswith("aws-sdk:"):
            _, service, operation = integration.split(":", 2)
            action = services.operations(service).get(botocore.xform_name(operation[0].upper() + operation[1:]))
            if not action:
                fail(f"{where}: {resource} names no operation of {service}")
            needs.append((action, f"{where}: {resource}"))
        elif integration in OPTIMIZED_INTEGRATIONS:
            needs.append((OPTIMIZED_INTEGRATIONS[integration], f"{where}: {resource}"))
        else:
            fail(f"{where}: unknown integration {resource}; add its IAM action to OPTIMIZED_INTEGRATIONS")
    if properties.get("Logging"):
        needs += [(a, "template: Logging") for a in SFN_LOG_DELIVERY]
    if (properties.get("Tracing") or {}).get("Enabled"):
        needs += [(a, "template: Tracing Enabled") for a in SFN_XRAY]
    return needs


def functions(template, core):
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    found = {}
    for logical, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        code_uri = plain_sub(properties.get("CodeUri"))
        if not code_uri:
            fail(f"template.yaml {logical}: CodeUri is not a path")
        crate = (TEMPLATE.parent / code_uri).resolve()
        role_id, role = core_role(core, output_of(properties.get("Role")), logical)
        # Keyed by the function, not the crate: one crate may be deployed twice (the forward
        # and the reverse stream-replicator), each with its own role.
        found[logical] = (logical, crate, role_id, role, properties, globals_)
    return found


# ------------------------------------------------------------------ the check


def main(argv):
    listing = "--list" in argv
    template = cfn_yaml.load(str(TEMPLATE))
    core_path = Path(argv[argv.index("--core") + 1]) if "--core" in argv else CORE
    core = cfn_yaml.load(str(core_path))
    services = Services()
    adapters = Adapters(services)
    deployed = functions(template, core)
    problems = []
    crates = sorted(p.parent for p in FUNCTIONS.glob("*/Cargo.toml"))
    deployed_crates = {entry[1].name for entry in deployed.values()}
    for crate in crates:
        if crate.name not in deployed_crates:
            problems.append(f"functions/{crate.name} is not deployed by template.yaml, so its role is unchecked")
    for logical, crate, role_id, role, properties, globals_ in (deployed[k] for k in sorted(deployed)):
        name = crate.name
        crate_services, manifest = sdk_services(crate / "Cargo.toml")
        deploy_metadata = manifest.get("package", {}).get("metadata", {}).get("lambda", {}).get("deploy", {})
        needs = []  # (action, origin)
        names = set()
        for rust in rust_files(crate):
            names |= set(re.findall(r"\b[A-Za-z_]\w*\b", rust.code))
            for m in CALL.finditer(rust.code):
                action = services.resolve(m.group(1), crate_services, rust.sdk_crates(), rust.where(m.start()))
                if action:
                    needs.append((action, f"{rust.where(m.start())} .{m.group(1)}()"))
        if SHARED_CRATE in names:
            if re.search(r"\b(adapters|ports)::\*", "\n".join(r.code for r in rust_files(crate))):
                names |= adapters.types | {t for _, t in adapters.calls}
            used, unclear = adapters.used_by(names)
            needs += [(action, f"{where} (shared adapter)") for action, where in used]
            for typ in unclear:
                problems.append(f"{name}: uses {typ} but names none of the traits it implements; cannot tell its calls")
        needs += platform_actions(name, properties, globals_, deploy_metadata)
        allowed = allowed_actions(role)
        by_action = defaultdict(list)
        for action, origin in needs:
            by_action[action].append(origin)
        if listing:
            print(f"{name} ({logical}, role {role_id}):")
            for action in sorted(by_action):
                print(f"  {action:38} {by_action[action][0]}{' ...' if len(by_action[action]) > 1 else ''}")
        for action in sorted(by_action):
            if not allows(allowed, action):
                problems.append(
                    f"{name}: role {role_id} (infra/core.yaml) does not allow {action}, needed by "
                    + "; ".join(by_action[action])
                )
    machines = 0
    for logical, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::Serverless::StateMachine":
            continue
        machines += 1
        properties = resource.get("Properties", {})
        role_id, role = core_role(core, output_of(properties.get("Role")), logical)
        allowed = allowed_actions(role)
        needs = state_machine_needs(logical, properties, services)
        if listing:
            print(f"{logical} (state machine, role {role_id}):")
            for action, origin in sorted(set(needs)):
                print(f"  {action:38} {origin}")
        for action, origin in needs:
            if not allows(allowed, action):
                problems.append(f"{logical}: role {role_id} (infra/core.yaml) does not allow {action}, needed by {origin}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"iam_coverage: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(
        f"iam coverage: every AWS call of {len(deployed)} functions and {machines} state machine(s) is allowed by its role"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
