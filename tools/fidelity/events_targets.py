"""EventBridge rules start the Step Functions executions they target.

AWS: a rule's target may be a state machine (`arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`).
For each event the rule matches, EventBridge calls StartExecution on it with the target's
RoleArn, passing as input the event itself, or what the target's `Input` (a constant),
`InputPath` (a JSONPath into the event) or `InputTransformer` (`InputPathsMap` +
`InputTemplate`, where `<aws.events.event.json>` is the whole event) makes of it
(EventBridge User Guide, "Event bus targets" and "Input transformation"). The execution is
unnamed (Step Functions gives it a UUID name). Delivery is asynchronous and retried under the
target's RetryPolicy, then dead-lettered.

moto: `Rule.send_to_targets` delivers to log groups, archives, SQS queues, other event buses
and API destinations; a state machine target is skipped without a word.

This: after moto's own delivery, every state machine target of a rule that matches the event
gets its execution, in the target's account and region, from the backend that executes
definitions (`stepfunctions`), with the input computed as above from the event as AWS
delivers it (`time` in ISO 8601: moto keeps epoch seconds inside and its transformer passes
them on; no `ingestion-time` key), through moto's transformer for `InputPathsMap`. Approximations: the start is synchronous with PutEvents; a start that
fails is printed to stderr, not retried or dead-lettered.
"""

import copy
import datetime
import json
import sys

from jsonpath_ng.ext import parse as jsonpath
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.stepfunctions import responses as sfn_responses
from moto.utilities.arns import parse_arn

_original_send_to_targets = Rule.send_to_targets


def _as_delivered(event):
    """The event as EventBridge delivers it: `time` in ISO 8601 (moto keeps epoch seconds
    inside), without moto's `ingestion-time`; and that time (ISO 8601, milliseconds)."""
    delivered = {key: value for key, value in event.items() if key != "ingestion-time"}
    if isinstance(delivered.get("time"), (int, float)):
        delivered["time"] = datetime.datetime.fromtimestamp(delivered["time"], datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    ingested = event.get("ingestion-time")
    if isinstance(ingested, (int, float)):
        ingested = datetime.datetime.fromtimestamp(ingested, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.%f"
        )[:-3] + "Z"
    return delivered, ingested or delivered.get("time")


def _execution_input(target, event) -> str:
    """The input EventBridge passes to the target for `event`."""
    delivered, ingested = _as_delivered(event)
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        found = jsonpath(target["InputPath"]).find(delivered)
        return json.dumps(found[0].value if found else None)
    transformer = target.get("InputTransformer")
    if transformer:
        # The two predefined variables first, as AWS fills them; then moto's InputPathsMap.
        template = (
            transformer.get("InputTemplate", "")
            .replace("<aws.events.event.json>", json.dumps(delivered))
            .replace("<aws.events.event.ingestion-time>", ingested)
        )
        transformed = EventTemplateParser.parse(
            input_template=template,
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=dict(delivered, **{"ingestion-time": ingested}),
        )
        return transformed if isinstance(transformed, str) else json.dumps(transformed)
    return json.dumps(delivered)


def _is_state_machine(target) -> bool:
    arn = parse_arn(target["Arn"])
    return arn.service == "states" and arn.resource_type == "stateMachine"


def _send_to_targets(self, original_event, transform_input=True):
    machines = [t for t in self.targets if _is_state_machine(t)]
    others = [t for t in self.targets if not _is_state_machine(t)]
    if others:
        # moto's delivery raises NotImplementedError on a target it does not know: it gets
        # a copy of the rule with the others only.
        shadow = copy.copy(self)
        shadow.targets = others
        _original_send_to_targets(shadow, original_event, transform_input)
    if not machines or not self.event_pattern.matches_event(original_event):
        return
    for target in machines:
        arn = parse_arn(target["Arn"])
        try:
            backend = sfn_responses.get_backend(arn.account, arn.region)
            backend.start_execution(target["Arn"], execution_input=_execution_input(target, original_event))
        except Exception as error:  # AWS retries, then dead-letters; the caller sees no execution
            print(f"events_targets: StartExecution {target['Arn']} for rule {self.name}: {error!r}", file=sys.stderr)


def install():
    Rule.send_to_targets = _send_to_targets
