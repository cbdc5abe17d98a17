"""Step Functions execute state machines; Lambda tasks run the real function binaries.

AWS: StartExecution runs the state machine. A Lambda task (`arn:aws:states:::lambda:invoke`,
with or without `.waitForTaskToken`, or a function ARN as `Resource`) calls Lambda's Invoke
API, which runs the function and answers its response, or a function error (header
`X-Amz-Function-Error`, body `{"errorType", "errorMessage"}`). Step Functions turns that error
into a task failure with Error = `errorType` and Cause = the error document, which `Retry`
and `Catch` match by name, by `States.TaskFailed` or by `States.ALL`.

moto: StartExecution only records a RUNNING execution unless the config switch
`stepfunctions.execute_state_machine` is on (off by default, settable through
POST /moto-api/config); with it on, a port of LocalStack's interpreter
(`moto/stepfunctions/parser`) runs the definition. That interpreter reaches Lambda with a
boto3 client to `http://localhost:$MOTO_PORT`, with a fixed access key (so always the default
account), and moto's Lambda `invoke` runs the function in a Docker container; there is no
Docker here, so every Lambda task fails.

This module:
- turns `execute_state_machine` on when it is installed, and makes state machines created by
  CloudFormation land in the backend that executes (moto puts them in the other one);
- makes moto's Lambda `invoke` (the Invoke API and everything in moto that calls it) post the
  payload to `cargo lambda watch` (its URL and the binary serving the function name are in
  `$FIDELITY_STATE_DIR/lambda-functions/<name>`), at
  `/2015-03-31/functions/<name>/invocations`, after resolving the function in moto as AWS
  does (an unregistered function is ResourceNotFoundException); a function error comes back
  as `X-Amz-Function-Error: Unhandled` with the error document as payload;
- makes the interpreter's Lambda tasks call that in process, in the execution's account and
  region (or the ones in the function ARN), with AWS's result shape (Payload, StatusCode,
  ExecutedVersion, SdkHttpMetadata, SdkResponseMetadata) and `InvocationType` honoured;
- points the interpreter's other service clients (aws-sdk:*, sqs, sns, dynamodb, ...) at
  127.0.0.1 in the execution's account, and makes aws-sdk:lambda:invoke send JSON and
  return the Payload as a string, as AWS does;
- gives unnamed executions a UUID name, and passes SendTaskFailure's `cause` on;
- applies a CloudFormation state machine's `DefinitionSubstitutions` (moto ignores them).
"""

import importlib
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email.utils import formatdate

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaBackend
from moto.awslambda.utils import get_backend as lambda_backend
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config
from moto.core.exceptions import JsonRESTError, ServiceException
from moto.core.models import botocore_stubber
from moto.core.responses import EmptyResult
from moto.settings import moto_server_port
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_lambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.stepfunctions.utils import cfn_to_api_tags

from .state import state_dir

# Lambda's own limit; cargo lambda watch builds a function on its first invocation, which can
# take minutes, so the function's configured Timeout is not enforced here.
_INVOKE_TIMEOUT_SECONDS = 900

_PARTIAL_ARN = re.compile(r"^(\d{12}):function:(.+)$")
_FULL_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:([^:]+):(\d{12}):function:(.+)$")


class LambdaServiceException(JsonRESTError):
    """Lambda's 500 `ServiceException`: the invocation could not reach the function."""

    code = 500

    def __init__(self, message: str):
        super().__init__("ServiceException", message)


def _header(headers, name: str):
    """A request header, case-insensitively; moto passes werkzeug headers or plain dicts."""
    if not headers:
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _route(function_name: str):
    """Where `function_name` runs: (watch URL, binary). `lambda-functions/<name>` (written by
    `Emulator::route_lambda`) holds "URL BINARY" for a deployed name such as
    `shop-failover-rds-promoter`."""
    route = state_dir() / "lambda-functions" / function_name
    try:
        url, binary = route.read_text().split()
        return url.rstrip("/"), binary
    except FileNotFoundError:
        raise LambdaServiceException(
            f"no route for function {function_name}: {route} is missing (the test kit writes it with "
            "Emulator::route_lambda before the function can be invoked)"
        )
    except ValueError:
        raise LambdaServiceException(f"{route} must hold 'URL BINARY'")


def _post(function_name: str, body: bytes):
    """Invokes `function_name` on cargo lambda watch: (payload bytes, function error or None)."""
    base, binary = _route(function_name)
    name = urllib.parse.quote(binary, safe="")
    url = f"{base}/2015-03-31/functions/{name}/invocations"
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=_INVOKE_TIMEOUT_SECONDS) as response:
            payload = response.read()
            return payload, response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as error:
        payload = error.read()
        status = error.code
    except (OSError, urllib.error.URLError) as error:
        raise LambdaServiceException(f"cannot invoke {function_name} at {url}: {error}")
    # Older cargo lambda versions answer a function error with a non-2xx status and the
    # error document as body; a 404 without errorType is "no such binary in the workspace".
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if isinstance(document, dict) and ("errorType" in document or "errorMessage" in document):
        return payload, "Unhandled"
    raise LambdaServiceException(
        f"cargo lambda watch answered {status} for {function_name} at {url}: "
        f"{payload.decode('utf-8', 'replace')}"
    )


def _canonical_name(function_name: str, region: str) -> str:
    """moto's lookup takes names, `name:qualifier` and full ARNs; AWS also takes partial ARNs."""
    partial = _PARTIAL_ARN.match(function_name)
    if partial:
        return f"arn:aws:lambda:{region}:{partial.group(1)}:function:{partial.group(2)}"
    return function_name


def _backend_invoke(self, function_name, qualifier, body, headers, response_headers):
    """`LambdaBackend.invoke`, forwarded to cargo lambda watch instead of Docker."""
    fn = self.get_function(_canonical_name(function_name, self.region_name), qualifier)  # as AWS
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body or b"{}"
    invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
    response_headers["x-amz-executed-version"] = fn.version
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        # Lambda queues an asynchronous invocation and answers 202 at once.
        _route(fn.function_name)  # an unroutable function fails now, as a missing one would
        threading.Thread(
            target=_post_quietly,
            args=(fn.function_name, body),
            name=f"lambda-event-{fn.function_name}",
            daemon=True,
        ).start()
        return b""
    payload, function_error = _post(fn.function_name, body)
    if function_error:
        response_headers["x-amz-function-error"] = function_error
    response_headers["Content-Length"] = str(len(payload))
    return payload


def _post_quietly(function_name, body):
    try:
        _post(function_name, body)
    except Exception:  # an asynchronous invocation's outcome reaches no caller
        pass


def _client_error(error: Exception) -> ClientError:
    """A moto error as the botocore error the interpreter formats (`Lambda.<Code>`, cause)."""
    code = getattr(error, "error_type", None) or getattr(error, "code", None) or "ServiceException"
    status = getattr(error, "code", 500)
    return ClientError(
        {
            "Error": {"Code": str(code), "Message": getattr(error, "message", str(error))},
            "ResponseMetadata": {
                "HTTPStatusCode": status if isinstance(status, int) else 400,
                "RequestId": str(uuid.uuid4()),
            },
        },
        "Invoke",
    )


_original_integration = lambda_eval_utils.execute_lambda_function_integration


def _execute_lambda_function_integration(env, parameters, region, state_credentials):
    """The interpreter's Lambda call, made in process in the execution's account and region.

    moto's version uses a boto3 client to localhost:$MOTO_PORT with a fixed key (default
    account only, and whatever answers on localhost); the result and errors it hands on are
    the same as here.
    """
    if env.is_mocked_mode():
        return _original_integration(env, parameters, region, state_credentials)
    details = env.aws_execution_details
    account, region = details.account, region or details.region
    function_name = str(parameters["FunctionName"])
    arn = _FULL_ARN.match(function_name)
    if arn:
        region, account = arn.group(1), arn.group(2)
    invocation_type = parameters.get("InvocationType") or "RequestResponse"
    response_headers = {}
    try:
        payload = lambda_backend(account, region).invoke(
            function_name,
            parameters.get("Qualifier"),
            parameters.get("Payload"),
            {"X-Amz-Invocation-Type": invocation_type},
            response_headers,
        )
    except (JsonRESTError, ServiceException) as error:
        raise _client_error(error)
    status = {"Event": 202, "DryRun": 204}.get(invocation_type, 200)
    text = (payload or b"").decode("utf-8")
    try:
        parsed = json.loads(text) if text else text
    except ValueError:
        parsed = text
    function_error = response_headers.get("x-amz-function-error")
    if function_error:
        raise lambda_eval_utils.LambdaFunctionErrorException(
            function_error, json.dumps(parsed, separators=(",", ":"))
        )
    version = response_headers.get("x-amz-executed-version", "$LATEST")
    request_id = str(uuid.uuid4())
    headers = {
        "Content-Length": str(len(payload or b"")),
        "Content-Type": "application/json",
        "Date": formatdate(usegmt=True),
        "X-Amz-Executed-Version": version,
        "x-amzn-RequestId": request_id,
    }
    # The shape AWS hands on: the Invoke response plus the SDK's HTTP metadata.
    env.stack.append(
        {
            "ExecutedVersion": version,
            "Payload": parsed,
            "SdkHttpMetadata": {
                "AllHttpHeaders": {k: [v] for k, v in headers.items()},
                "HttpHeaders": headers,
                "HttpStatusCode": status,
            },
            "SdkResponseMetadata": {"RequestId": request_id},
            "StatusCode": status,
        }
    )


# Which account the interpreter's service calls are made in: the executing thread's.
_execution_account = threading.local()
_original_eval_execution = StateTaskService._eval_execution


def _eval_execution_in_account(self, env):
    previous = getattr(_execution_account, "value", None)
    _execution_account.value = env.aws_execution_details.account
    try:
        return _original_eval_execution(self, env)
    finally:
        _execution_account.value = previous


def _boto_client_for(region, service, state_credentials=None):
    """The interpreter's client for a service task (aws-sdk:*, sqs, sns, dynamodb, ...).

    moto's goes to `localhost` (we bind 127.0.0.1 only) with a fixed key, i.e. always the
    default account; this one goes to 127.0.0.1 and names the execution's account.
    """
    kwargs = {}
    if not botocore_stubber.enabled:
        kwargs["endpoint_url"] = f"http://127.0.0.1:{moto_server_port()}"
    client = boto3.client(
        service_name=service,
        region_name=region,
        aws_access_key_id="ak",
        aws_secret_access_key="sk",
        config=Config(
            parameter_validation=False,
            retries={"max_attempts": 0, "total_max_attempts": 1},
            connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
        ),
        **kwargs,
    )
    account = getattr(_execution_account, "value", None)
    if account:

        def name_account(request, **_):
            request.headers["x-moto-account-id"] = account

        client.meta.events.register("before-sign.*.*", name_account)
    return client


_BOTO_CLIENT_USERS = [
    "moto.stepfunctions.parser.asl.component.state.exec." + name
    for name in [
        f"state_task.service.state_task_service_{service}"
        for service in ("aws_sdk", "batch", "dynamodb", "ecs", "events", "glue", "sfn", "sns", "sqs")
    ]
    + [
        "state_task.service.state_task_service_unsupported",
        "state_map.item_reader.eval.resource_eval_s3",
        "state_map.result_writer.resource_eval.resource_eval_s3",
    ]
]

_original_aws_sdk_task = StateTaskServiceAwsSdk._eval_service_task


def _aws_sdk_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
    """aws-sdk:lambda:invoke as in AWS: a JSON Payload in, the response Payload as a string out.

    moto hands the Payload object to botocore unserialised (it arrives form-encoded) and
    leaves the response's stream in the result, which fails the state (it cannot be copied).
    """
    service, action = self._get_boto_service_name(), self._get_boto_service_action()
    is_invoke = (service, action) == ("lambda", "invoke")
    parameters = normalised_parameters
    if is_invoke and "Payload" in parameters:
        parameters["Payload"] = lambda_eval_utils.to_payload_type(parameters["Payload"])
    _original_aws_sdk_task(self, env, resource_runtime_part, parameters, state_credentials)
    result = env.stack[-1] if env.stack else None
    if is_invoke and isinstance(result, dict) and hasattr(result.get("Payload"), "read"):
        result["Payload"] = result["Payload"].read().decode("utf-8")


_original_start_execution = StepFunctionsParserBackend.start_execution


def _start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
    """StartExecution without a name gets a UUID as in AWS.

    moto's interpreter backend uses None: the ARN ends in `:None`, `$$.Execution.Name` is
    null, and a second unnamed start with the same input returns the first execution.
    """
    return _original_start_execution(
        self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
    )


def _definition(properties) -> str:
    """`DefinitionString` with its `DefinitionSubstitutions` applied, as CloudFormation does:
    each `${key}` becomes the key's value, and nothing else changes (a `$$.Execution.Id`
    stays as written). SAM's `DefinitionUri` + `DefinitionSubstitutions` become exactly this.
    moto ignores the property, and its `Fn::Sub` with a variable map runs Python's
    `string.Template`, which turns `$$` into `$`: a definition must not go through it."""
    definition = properties.get("DefinitionString", "")
    if isinstance(definition, dict):  # CloudFormation also takes the definition as an object
        definition = json.dumps(definition)
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    return definition


# CloudFormation: moto's handlers use the non-executing backend by name; these use the one the
# API serves (`responses.get_backend`), so a stack's state machine can be started.
def _cfn_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    backend = sfn_responses.get_backend(account_id, region_name)
    return backend.create_state_machine(
        properties.get("StateMachineName", resource_name),
        _definition(properties),
        properties.get("RoleArn", ""),
        tags=cfn_to_api_tags(properties.get("Tags", [])),
    )


def _cfn_delete(cls, resource_name, cloudformation_json, account_id, region_name):
    sfn_responses.get_backend(account_id, region_name).delete_state_machine(resource_name)


def _cfn_update(
    cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
):  # moto calls these by keyword: the parameter names are moto's
    original = original_resource
    properties = cloudformation_json.get("Properties", {})
    name = properties.get("StateMachineName", original.name)
    backend = sfn_responses.get_backend(account_id, region_name)
    if name != original.name:  # replacement
        cloudformation_json["Properties"] = original.get_cfn_properties(properties)
        new = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
        backend.delete_state_machine(original.arn)
        return new
    state_machine = backend.update_state_machine(
        original.arn,
        definition=_definition(properties) if "DefinitionString" in properties else None,
        role_arn=properties.get("RoleArn"),
    )
    backend.tagger.tag_resource(state_machine.arn, cfn_to_api_tags(properties.get("Tags", [])))
    return state_machine


def _send_task_failure(self):
    """SendTaskFailure with its `cause`: moto's handler passes only `error` to the backend."""
    kwargs = {"error": self._get_param("error")}
    if isinstance(self.stepfunction_backend, StepFunctionsParserBackend):
        kwargs["cause"] = self._get_param("cause")
    self.stepfunction_backend.send_task_failure(self._get_param("taskToken"), **kwargs)
    return EmptyResult()


def install():
    # Set in place, before any request: responses.get_backend reads it on every call.
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    LambdaBackend.invoke = _backend_invoke
    # With `lambda.use_docker` off moto answers a canned "happy path" instead; forward too.
    LambdaSimpleBackend.invoke = _backend_invoke
    lambda_eval_utils.execute_lambda_function_integration = _execute_lambda_function_integration
    StepFunctionResponse.send_task_failure = _send_task_failure
    StepFunctionsParserBackend.start_execution = _start_execution
    # AWS's lambda:invoke takes InvocationType (Event: 202, no wait); moto drops it silently.
    state_task_service_lambda._SUPPORTED_API_PARAM_BINDINGS["invoke"].add("InvocationType")
    StateTaskService._eval_execution = _eval_execution_in_account
    StateTaskServiceAwsSdk._eval_service_task = _aws_sdk_task
    for module_name in _BOTO_CLIENT_USERS:
        module = importlib.import_module(module_name)
        if hasattr(module, "boto_client_for"):
            module.boto_client_for = _boto_client_for
    StateMachine.create_from_cloudformation_json = classmethod(_cfn_create)
    StateMachine.delete_from_cloudformation_json = classmethod(_cfn_delete)
    StateMachine.update_from_cloudformation_json = classmethod(_cfn_update)
