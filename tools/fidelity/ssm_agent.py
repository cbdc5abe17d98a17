"""SSM Run Command with managed nodes and an agent that runs Command documents for real.

Split by concept: `ssm_nodes` (which instances are managed nodes, DescribeInstanceInformation),
`ssm_parameters` (documents and their parameters, checked before anything runs),
`ssm_errors` (the error codes), and this module (commands, invocations, and running the
steps on each node).

What AWS does: a managed node is an instance whose SSM Agent has registered;
DescribeInstanceInformation lists it with a PingStatus (Online, or ConnectionLost while its
agent is gone). SendCommand checks the document and its parameters before anything runs
(unknown names, missing required values and values outside allowedPattern/allowedValues are
refused with InvalidParameters; instances that are not managed nodes with InvalidInstanceId)
and returns at once with Status Pending. The service then hands the command to at most
MaxConcurrency nodes at a time and stops handing it out once more than MaxErrors invocations
have failed or timed out. Each node's agent writes every aws:runShellScript step to
`/var/lib/amazon/ssm/<instance-id>/document/orchestration/<command-id>/<step>/_script.sh`
and runs it as root in its own working directory (the agent's, `/usr/bin/`), with
AWS_SSM_INSTANCE_ID, AWS_SSM_REGION_NAME and, for each parameter declared with
`interpolationType: ENV_VAR`, `SSM_<name>`; the step's `timeoutSeconds` (default 3600) bounds
it, after which the agent kills its process group (response code 137, TimedOut /
ExecutionTimedOut). GetCommandInvocation, ListCommandInvocations and ListCommands report the
live state: Pending, InProgress, then Success, Failed, TimedOut, Cancelled or Undeliverable.

What moto did: DescribeInstanceInformation, ListCommandInvocations and CancelCommand were not
implemented (HTTP 500); SendCommand accepted any document name and any parameters, ran
nothing, and every invocation was Success at once with empty output.

What this does: a running EC2 instance is a managed node when `FIDELITY_STATE_DIR/nodes/<id>/root`
exists (the node's file tree, written by the test kit's fixture) and is ConnectionLost while
`nodes/<id>/offline` exists. SendCommand validates as SSM does, then a dispatcher thread per
command runs each node's steps with bash, chrooted into the node's root inside a private
mount namespace: the host's `/usr` read-only (the root links bin, sbin, lib and lib64 into
it), the root's `usr-local-bin/` over `/usr/local/bin` (so the fixture's stub systemctl,
runuser, wp shadow the host's), a private /dev with null, zero, full, random, urandom and tty,
and a proc with /proc/sys read-only. Mounts vanish with the namespace; processes are started
by `keeper` and die with the emulator. CancelCommand kills running steps (Cancelled, 137) and
cancels pending ones. Isolation for tests, not a security sandbox: the
script runs as real root.

Approximations (one line each):
- Delivery is immediate: invocations exist (Pending) when SendCommand returns, never InvocationDoesNotExist.
- A node offline when the dispatcher reaches it is Failed/Undeliverable (-1) at once, not after retries.
- Not yet started when errors exceed MaxErrors: Cancelled/Terminated (-1); the Status half is a guess.
- Still Pending TimeoutSeconds after the request: TimedOut/DeliveryTimedOut (-1).
- Command: Success (Undeliverable ignored) | Failed or TimedOut when errors > MaxErrors | otherwise Failed/Incomplete.
- Command: all Undeliverable -> Failed/Undeliverable; delivery timeouts > MaxErrors -> TimedOut/DeliveryTimedOut.
- Targets matching no node: Success/NoInstancesInTag, TargetCount 0; InstanceIds and Targets together: union.
- MaxConcurrency "N%" is ceil(N% of targets), at least 1; MaxErrors "N%" is floor(N% of targets).
- allowedPattern is `re.fullmatch` (Java whole-value matching, as AWS-RunShellScript's unanchored pattern needs).
- An allowedPattern Python's re cannot compile (Java-only syntax) is refused as InvalidParameters.
- `{{ name }}` is replaced in step inputs for ENV_VAR parameters too (the 3.3 agent's behaviour is undocumented).
- `{{ssm:...}}` Parameter Store references are not resolved.
- `SSM_<name>` of a StringList is its values joined with commas (undocumented).
- Steps run `bash -c <script>` (shebang decides; none: bash, as Amazon Linux's sh) for the agent's `sh -c`.
- Environment: PATH as the agent's, AWS_SSM_INSTANCE_ID/REGION_NAME, SSM_*; no HOME; bash adds PWD/SHLVL.
- Working directory /usr/bin is the host's, read-only (a node would let root write there).
- Only aws:runShellScript runs; other actions fail the step.
- Preconditions: StringEquals on platformType (always Linux); onFailure exit/successAndExit honoured.
- GetCommandInvocation: first 24,000 chars of stdout, 8,000 of stderr (as documented); no truncation marker.
- ListCommandInvocations plugin Output: first 2,500 chars of stdout + "----------ERROR-------" + stderr.
- Exit code 137 reads as TimedOut, as the Linux agent reads it; death by a signal is -1, as Go reports it.
- GetCommandInvocation without PluginName on a multi-step document: InvalidPluginName.
- Error messages are modelled on AWS's, not verbatim; the error codes are AWS's.
- AWS-RunShellScript (schema 1.2) is built in when no document of that name was created.
- Needs root (unshare, mount, chroot); without it every step fails with the reason on stderr.
Full stdout/stderr stay in the node's orchestration directory (`stdout`, `stderr` beside `_script.sh`).
"""

import datetime
import json
import os
import pathlib
import signal
import subprocess
import threading
import time
import uuid

from moto.core.responses import ActionResult
from moto.ssm.exceptions import InvalidFilterKey, ValidationException
from moto.ssm.models import Command, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

from . import keeper, ssm_nodes, ssm_parameters
from .ssm_errors import InvalidCommandId, InvalidInstanceId, InvalidPluginName, InvalidTarget, InvocationDoesNotExist

NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AGENT_WORKING_DIRECTORY = "/usr/bin"  # the agent unit's WorkingDirectory=/usr/bin/
STOPPED_PREEMPTIVELY = 137  # the Linux agent's exit code for a killed (timed out, cancelled) step
STDOUT_CHARS = 24_000
STDERR_CHARS = 8_000
PLUGIN_OUTPUT_CHARS = 2_500

# Every command's and invocation's state; the dispatcher and step threads wait on `_changed`.
_lock = threading.RLock()
_changed = threading.Condition(_lock)




# ---------------------------------------------------------------------------------------------
# Commands and invocations


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _string_time(moment):
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _elapsed(start, end):
    """ISO-8601 duration as SSM prints it (Java's Duration: PT1H0.271S)."""
    if start is None or end is None:
        return ""
    ms = max(0, int(round((end - start).total_seconds() * 1000)))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or millis or text == "PT":
        text += str(seconds) + (f".{millis:03d}".rstrip("0") if millis else "") + "S"
    return text


_TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled"}


class _Step:
    """One plugin (document step) of one invocation."""

    def __init__(self, name, action, inputs, precondition, on_failure):
        self.name = name
        self.action = action
        self.inputs = inputs
        self.precondition = precondition
        self.on_failure = on_failure
        self.status = "Pending"
        self.details = "Pending"
        self.code = -1
        self.start = None
        self.end = None
        self.stdout = ""
        self.stderr = ""

    def finish(self, status, details, code, stdout="", stderr=""):
        self.status, self.details, self.code = status, details, code
        self.stdout, self.stderr = stdout, stderr
        self.end = _now()


class _Invocation:
    """One node's copy of a command."""

    def __init__(self, command, instance_id, steps):
        self.command = command
        self.instance_id = instance_id
        self.steps = [_Step(*step) for step in steps]
        self.status = "Pending"
        self.details = "Pending"
        self.start = None
        self.end = None
        self.process = None
        self.cancelled = False

    @property
    def terminal(self):
        return self.status in _TERMINAL

    def end_unrun(self, status, details):
        """Ends an invocation that never ran (undeliverable, terminated, timed out, cancelled)."""
        self.status, self.details = status, details
        self.end = _now()
        for step in self.steps:
            if step.status not in _TERMINAL:
                step.status, step.details, step.code = status, details, -1

    def plugin_view(self, step):
        output = step.stdout
        if step.stderr:
            output += "\n----------ERROR-------\n" + step.stderr
        return {
            "Name": step.name,
            "Status": step.status,
            "StatusDetails": step.details,
            "ResponseCode": step.code,
            "ResponseStartDateTime": step.start,
            "ResponseFinishDateTime": step.end,
            "Output": output[:PLUGIN_OUTPUT_CHARS],
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3Region": self.command.output_s3_region or self.command.backend_region,
            "OutputS3BucketName": self.command.output_s3_bucket_name,
            "OutputS3KeyPrefix": self.command.output_s3_key_prefix,
        }

    def list_view(self, details):
        view = {
            "CommandId": self.command.command_id,
            "InstanceId": self.instance_id,
            "InstanceName": "",
            "Comment": self.command.comment,
            "DocumentName": self.command.document_name,
            "DocumentVersion": self.command.document_version,
            "RequestedDateTime": self.command.requested_date_time,
            "Status": self.status,
            "StatusDetails": self.details,
            "TraceOutput": "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "ServiceRole": self.command.service_role_arn,
            "NotificationConfig": self.command.notification_config,
            "CloudWatchOutputConfig": self.command.cloud_watch_output_config,
        }
        if details:
            view["CommandPlugins"] = [self.plugin_view(step) for step in self.steps]
        return view

    def get_view(self, plugin_name):
        if plugin_name:
            matches = [s for s in self.steps if s.name == plugin_name]
            if not matches:
                raise InvalidPluginName(f"The plugin name {plugin_name} is not valid.")
            step = matches[0]
        elif len(self.steps) == 1:
            step = self.steps[0]
        else:
            raise InvalidPluginName("The document has several steps: give PluginName, the name of the step.")
        return {
            "CommandId": self.command.command_id,
            "InstanceId": self.instance_id,
            "Comment": self.command.comment,
            "DocumentName": self.command.document_name,
            "DocumentVersion": self.command.document_version,
            "PluginName": step.name,
            "ResponseCode": step.code,
            "ExecutionStartDateTime": _string_time(step.start),
            "ExecutionElapsedTime": _elapsed(step.start, step.end),
            "ExecutionEndDateTime": _string_time(step.end),
            "Status": step.status,
            "StatusDetails": step.details,
            "StandardOutputContent": step.stdout[:STDOUT_CHARS],
            "StandardOutputUrl": "",
            "StandardErrorContent": step.stderr[:STDERR_CHARS],
            "StandardErrorUrl": "",
            "CloudWatchOutputConfig": self.command.cloud_watch_output_config,
        }


class LiveCommand(Command):
    """moto's Command record, with invocations that really run and live status fields."""

    def __init__(self, backend, document_name, document_version, content, values, nodes, requested, settings):
        # moto's Command.__init__ marks everything Success; none of it applies here.
        self.account_id = backend.account_id
        self.backend_region = backend.region_name
        self.command_id = str(uuid.uuid4())
        self.document_name = document_name
        self.document_version = document_version or "$DEFAULT"
        self.comment = settings.get("comment") or ""
        self.parameters = requested.get("parameters") or {}
        self.instance_ids = list(requested.get("instance_ids") or [])
        self.targets = requested.get("targets") or []
        self.timeout_seconds = settings["timeout_seconds"]
        self.max_concurrency = settings["max_concurrency"]
        self.max_errors = settings["max_errors"]
        self.notification_config = settings.get("notification_config") or {}
        self.output_s3_bucket_name = settings.get("output_s3_bucket_name") or ""
        self.output_s3_key_prefix = settings.get("output_s3_key_prefix") or ""
        self.output_s3_region = settings.get("output_s3_region") or ""
        self.service_role_arn = settings.get("service_role_arn") or ""
        self.cloud_watch_output_config = {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False}
        self.requested_date_time = _now()
        self.requested_monotonic = time.monotonic()
        steps = [(name, action, ssm_parameters.substitute(inputs, values), ssm_parameters.substitute(pre, values), fail)
                 for name, action, inputs, pre, fail in ssm_parameters.steps(content)]
        execution = sum(ssm_parameters.execution_timeout(inputs.get("timeoutSeconds")) for _, _, inputs, _, _ in steps)
        self.expires_after = self.requested_date_time + datetime.timedelta(seconds=self.timeout_seconds + execution)
        self.environment = {
            f"SSM_{name}": (",".join(value) if isinstance(value, list) else value)
            for name, value in values.items()
            if (content.get("parameters") or {}).get(name, {}).get("interpolationType") == "ENV_VAR"
        }
        self.invocations = [_Invocation(self, node, steps) for node in nodes]
        self.concurrency = ssm_parameters.count(self.max_concurrency, len(nodes), "MaxConcurrency")
        self.error_limit = ssm_parameters.count(self.max_errors, len(nodes), "MaxErrors")
        self.cancelled = False
        self.no_targets = not nodes
        self.status = "Pending"
        self.status_details = "Pending"
        self._refresh()
        self.sent_response = self.response_object()
        self.sent_response.update(CompletedCount=0, ErrorCount=0, DeliveryTimedOutCount=0, TargetCount=0)

    # --- status -------------------------------------------------------------------------------
    def error_count(self):
        return sum(1 for i in self.invocations if i.details in ("Failed", "ExecutionTimedOut"))

    def _refresh(self):
        """Recomputes the command's Status/StatusDetails from its invocations (under `_lock`)."""
        invocations = self.invocations
        if self.no_targets:
            self.status, self.status_details = "Success", "NoInstancesInTag"
            return
        done = all(i.terminal for i in invocations)
        if self.cancelled:
            self.status = self.status_details = "Cancelled" if done else "Cancelling"
            return
        if not done:
            started = any(i.status != "Pending" for i in invocations)
            self.status = self.status_details = "InProgress" if started else "Pending"
            return
        details = [i.details for i in invocations]
        errors = self.error_count()
        if errors > self.error_limit:
            if "Failed" in details:
                self.status, self.status_details = "Failed", "Failed"
            else:
                self.status, self.status_details = "TimedOut", "ExecutionTimedOut"
        elif details.count("DeliveryTimedOut") > self.error_limit:
            self.status, self.status_details = "TimedOut", "DeliveryTimedOut"
        elif all(d == "Undeliverable" for d in details):
            self.status, self.status_details = "Failed", "Undeliverable"
        elif all(d in ("Success", "Undeliverable") for d in details):
            self.status, self.status_details = "Success", "Success"
        else:
            self.status, self.status_details = "Failed", "Incomplete"

    def response_object(self):
        with _lock:
            invocations = self.invocations
            return {
                "CommandId": self.command_id,
                "DocumentName": self.document_name,
                "DocumentVersion": self.document_version,
                "Comment": self.comment,
                "ExpiresAfter": self.expires_after,
                "Parameters": self.parameters,
                "InstanceIds": self.instance_ids,
                "Targets": self.targets,
                "RequestedDateTime": self.requested_date_time,
                "Status": self.status,
                "StatusDetails": self.status_details,
                "OutputS3Region": self.output_s3_region or self.backend_region,
                "OutputS3BucketName": self.output_s3_bucket_name,
                "OutputS3KeyPrefix": self.output_s3_key_prefix,
                "MaxConcurrency": self.max_concurrency,
                "MaxErrors": self.max_errors,
                "TargetCount": len(invocations),
                "CompletedCount": sum(1 for i in invocations if i.terminal),
                "ErrorCount": self.error_count(),
                "DeliveryTimedOutCount": sum(1 for i in invocations if i.details == "DeliveryTimedOut"),
                "ServiceRole": self.service_role_arn,
                "NotificationConfig": self.notification_config,
                "CloudWatchOutputConfig": self.cloud_watch_output_config,
                "TimeoutSeconds": self.timeout_seconds,
            }

    # moto's Command API, kept for anything that calls it
    def get_invocation(self, instance_id, plugin_name):
        with _lock:
            for invocation in self.invocations:
                if invocation.instance_id == instance_id:
                    return invocation.get_view(plugin_name)
        raise InvocationDoesNotExist("The command invocation does not exist.")

    def invocation_response(self, instance_id, plugin_name):
        return self.get_invocation(instance_id, plugin_name or None)


def _changed_state(command):
    command._refresh()
    _changed.notify_all()


def _dispatch(command):
    """Hands the command to its nodes as SSM does: MaxConcurrency at a time, until MaxErrors."""
    deadline = command.requested_monotonic + command.timeout_seconds
    queue = list(command.invocations)
    with _lock:
        while True:
            queue = [i for i in queue if not i.terminal]
            if command.cancelled:
                for invocation in queue:
                    invocation.end_unrun("Cancelled", "Cancelled")
                break
            if command.error_count() > command.error_limit:
                for invocation in queue:
                    invocation.end_unrun("Cancelled", "Terminated")
                break
            if time.monotonic() >= deadline:
                for invocation in queue:
                    invocation.end_unrun("TimedOut", "DeliveryTimedOut")
                break
            running = sum(1 for i in command.invocations if i.status == "InProgress")
            while queue and running < command.concurrency:
                invocation = queue.pop(0)
                if not _deliverable(command, invocation.instance_id):
                    invocation.end_unrun("Failed", "Undeliverable")
                    continue
                invocation.status = invocation.details = "InProgress"
                invocation.start = _now()
                running += 1
                threading.Thread(
                    target=_run_invocation, args=(invocation,), name=f"ssm-agent-{invocation.instance_id}", daemon=True
                ).start()
            _changed_state(command)
            if not queue:
                break
            _changed.wait(timeout=max(0.0, deadline - time.monotonic()))
        _changed_state(command)


def _deliverable(command, instance_id):
    """Whether the node's agent would receive the command now: running, root present, online."""
    try:
        running = instance_id in {i.id for i in ssm_nodes.running_instances(command.account_id, command.backend_region)}
        return running and (ssm_nodes.node_dir(instance_id) / "root").is_dir() and ssm_nodes.is_online(instance_id)
    except Exception:  # a reset backend, a removed state directory: the node is gone
        return False


def _run_invocation(invocation):
    """The node's agent: runs each step in order (onFailure exit/successAndExit stop early)."""
    try:
        stop = None  # (status, details) given to the steps left when the run stops early
        for step in invocation.steps:
            if stop is not None:
                with _lock:
                    step.status, step.details, step.code = stop[0], stop[1], -1
                continue
            _run_step(invocation, step)
            with _lock:
                if invocation.cancelled:
                    stop = ("Cancelled", "Cancelled")
                elif step.status != "Success" and step.on_failure in ("exit", "successAndExit"):
                    stop = ("Success", "Skipped")
    except Exception as error:  # the emulator's own failure, shown where a test will look
        with _lock:
            for step in invocation.steps:
                if step.status not in _TERMINAL:
                    step.start = step.start or _now()
                    step.finish("Failed", "Failed", 1, stderr=f"ssm-agent (emulator) failed: {error!r}\n")
    finally:
        with _lock:
            statuses = [s.status for s in invocation.steps]
            if "Cancelled" in statuses or invocation.cancelled:
                invocation.status, invocation.details = "Cancelled", "Cancelled"
            elif "TimedOut" in statuses:
                invocation.status, invocation.details = "TimedOut", "ExecutionTimedOut"
            elif "Failed" in statuses and not _success_and_exit(invocation):
                invocation.status, invocation.details = "Failed", "Failed"
            else:
                invocation.status, invocation.details = "Success", "Success"
            invocation.end = _now()
            invocation.process = None
            _changed_state(invocation.command)


def _success_and_exit(invocation):
    return any(s.status == "Failed" and s.on_failure == "successAndExit" for s in invocation.steps)


def _precondition_holds(precondition):
    if not precondition:
        return True, ""
    for operator, arguments in precondition.items():
        if operator != "StringEquals" or not isinstance(arguments, list) or len(arguments) != 2:
            return None, f"unsupported precondition {json.dumps(precondition)}"
        left, right = ("Linux" if a == "platformType" else a for a in arguments)
        if left != right:
            return False, json.dumps(precondition)
    return True, ""


_SETUP = r"""
set -eu
root=$1 cwd=$2 script=$3
mount --rbind /usr "$root/usr"
mount -o remount,bind,ro "$root/usr"
if [ -d "$root/usr/local/bin" ]; then
  mount --bind "$root/usr-local-bin" "$root/usr/local/bin"
else
  echo "ssm-agent (emulator): the host has no /usr/local/bin; the node's stubs are not mounted" >&2
fi
mount -t tmpfs -o mode=0755,size=1m,nosuid tmpfs "$root/dev"
for device in null zero full random urandom tty; do
  : > "$root/dev/$device"
  mount --bind "/dev/$device" "$root/dev/$device"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir "$root/dev/shm"
mount -t tmpfs -o mode=1777,size=16m,nosuid,nodev tmpfs "$root/dev/shm"
mount -t proc proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
if [ -e "$root/proc/sysrq-trigger" ]; then mount --bind /dev/null "$root/proc/sysrq-trigger"; fi
exec chroot "$root" /bin/bash -c 'cd -- "$0" || exit 1; "$1"' "$cwd" "$script"
"""


def _prepare_root(root: pathlib.Path):
    """The mount points and links a node root needs (the fixture makes them; made here if missing)."""
    for name in ("usr", "dev", "proc", "usr-local-bin", "etc", "var/log"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for link in ("bin", "sbin", "lib", "lib64"):
        path = root / link
        if not path.exists() and not path.is_symlink():
            path.symlink_to(f"usr/{link}")
    tmp = root / "tmp"
    if not tmp.exists():
        tmp.mkdir()
        tmp.chmod(0o1777)


def _run_step(invocation, step):
    """Runs one aws:runShellScript step in the node's root, as the agent runs it on the node."""
    command = invocation.command
    with _lock:
        if invocation.cancelled:
            step.status = step.details = "Cancelled"
            return
        step.status = step.details = "InProgress"
        step.start = _now()
    holds, reason = _precondition_holds(step.precondition)
    if holds is None:
        with _lock:
            step.finish("Failed", "Failed", 1, stderr=f"ssm-agent (emulator): {reason}\n")
        return
    if not holds:
        with _lock:
            step.finish(
                "Success", "Skipped", 0,
                stdout=f"Step execution skipped due to unsatisfied preconditions: '{reason}'. Step name: {step.name}\n",
            )
        return
    if step.action != "aws:runShellScript":
        with _lock:
            step.finish("Failed", "Failed", 1, stderr=f"ssm-agent (emulator) runs only aws:runShellScript steps, not {step.action}\n")
        return

    root = ssm_nodes.node_dir(invocation.instance_id) / "root"
    _prepare_root(root)
    inside = pathlib.PurePosixPath("/var/lib/amazon/ssm") / invocation.instance_id / "document" / "orchestration" / command.command_id
    inside = inside / step.name.replace(":", "")
    plugin_id = str(step.inputs.get("id") or "").replace(":", "")
    if plugin_id:
        inside = inside / plugin_id
    directory = root / str(inside).lstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    lines = step.inputs.get("runCommand", [])
    if isinstance(lines, str):
        lines = lines.splitlines()
    script = directory / "_script.sh"
    script.write_text("\n".join(str(line) for line in lines) + "\n")
    script.chmod(0o700)
    working = step.inputs.get("workingDirectory") or ""
    cwd = working if isinstance(working, str) and working.startswith("/") else AGENT_WORKING_DIRECTORY
    timeout = ssm_parameters.execution_timeout(step.inputs.get("timeoutSeconds"))
    environment = {
        "PATH": NODE_PATH,
        "AWS_SSM_INSTANCE_ID": invocation.instance_id,
        "AWS_SSM_REGION_NAME": command.backend_region,
        **command.environment,
    }
    stdout_path, stderr_path = directory / "stdout", directory / "stderr"
    timed_out = False
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        try:
            process = keeper.popen(
                ["unshare", "--mount", "--propagation", "private", "--", "bash", "-c", _SETUP,
                 "ssm-agent-setup", str(root), cwd, str(inside / "_script.sh")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=environment, cwd="/",
                start_new_session=True,
            )
        except (OSError, ValueError) as error:
            with _lock:
                step.finish("Failed", "Failed", 1, stderr=f"failed to run commands: {error}\n")
            return
        with _lock:
            invocation.process = process
            cancel_now = invocation.cancelled
        if cancel_now:
            _kill(process)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
            process.wait()
            code = STOPPED_PREEMPTIVELY
    stdout = stdout_path.read_bytes().decode("utf-8", "replace")
    stderr = stderr_path.read_bytes().decode("utf-8", "replace")
    with _lock:
        invocation.process = None
        if code < 0:
            code = -1  # killed by a signal: Go's ExitStatus() is -1
        if invocation.cancelled and (timed_out or code in (STOPPED_PREEMPTIVELY, -1)):
            step.finish("Cancelled", "Cancelled", STOPPED_PREEMPTIVELY, stdout, stderr)
        elif code == 0:
            step.finish("Success", "Success", 0, stdout, stderr)
        elif code == STOPPED_PREEMPTIVELY:
            step.finish("TimedOut", "ExecutionTimedOut", code, stdout, stderr)
        else:
            step.finish("Failed", "Failed", code, stdout, stderr)


def _kill(process):
    """Kills the step's whole process group, as the agent does on timeout or cancel."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------------------------
# Backend operations


def _resolve_targets(backend, instance_ids, targets):
    """SendCommand's InstanceIds and Targets, as managed nodes in request order."""
    nodes = ssm_nodes.managed_nodes(backend.account_id, backend.region_name)
    chosen = []
    wanted = list(instance_ids or [])
    tag_checks = []
    for target in targets or []:
        key, values = target.get("Key", ""), list(target.get("Values") or [])
        if key == "InstanceIds":
            wanted += values
        elif key.startswith("tag:"):
            tag_checks.append(lambda tags, k=key[4:], v=set(values): tags.get(k) in v)
        elif key == "tag-key":
            tag_checks.append(lambda tags, v=set(values): bool(v & set(tags)))
        else:
            raise InvalidTarget(f"Target key {key} is not supported by the emulator (InstanceIds, tag:<key>, tag-key).")
    missing = [i for i in wanted if i not in nodes]
    if missing:
        raise InvalidInstanceId(f"Instances [[{', '.join(missing)}]] not in a valid state for account {backend.account_id}")
    for instance_id in wanted:
        if instance_id not in chosen:
            chosen.append(instance_id)
    if tag_checks:
        for instance_id in sorted(nodes):
            tags = ssm_nodes.instance_tags(nodes[instance_id])
            if instance_id not in chosen and all(check(tags) for check in tag_checks):
                chosen.append(instance_id)
    return chosen


def send_command(self, comment="", document_name=None, timeout_seconds=None, instance_ids=None,
                 max_concurrency=None, max_errors=None, notification_config=None, output_s3_bucket_name="",
                 output_s3_key_prefix="", output_s3_region="", parameters=None, service_role_arn="",
                 targets=None, document_version=None, **_ignored):
    """SendCommand: validates everything SSM validates, then dispatches in the background."""
    if not instance_ids and not targets:
        raise ValidationException("Either InstanceIds or Targets must be given.")
    timeout = 3600 if timeout_seconds in (None, "") else int(timeout_seconds)
    if not 30 <= timeout <= 2_592_000:
        raise ValidationException(
            f"1 validation error detected: Value '{timeout}' at 'timeoutSeconds' failed to satisfy constraint: "
            "Member must have value between 30 and 2592000"
        )
    name, content = ssm_parameters.document_content(self, document_name, document_version)
    ssm_parameters.steps(content)  # an unsupported schema is refused before anything runs
    values = ssm_parameters.validated_parameters(content, parameters)
    nodes = _resolve_targets(self, instance_ids, targets)
    settings = {
        "comment": comment,
        "timeout_seconds": timeout,
        "max_concurrency": max_concurrency or "50",
        "max_errors": max_errors or "0",
        "notification_config": notification_config,
        "output_s3_bucket_name": output_s3_bucket_name,
        "output_s3_key_prefix": output_s3_key_prefix,
        "output_s3_region": output_s3_region,
        "service_role_arn": service_role_arn,
    }
    requested = {"parameters": parameters, "instance_ids": instance_ids, "targets": targets}
    with _lock:
        command = LiveCommand(self, name, document_version, content, values, nodes, requested, settings)
        self._commands.append(command)
    threading.Thread(target=_dispatch, args=(command,), name=f"ssm-dispatch-{command.command_id}", daemon=True).start()
    return command


def _live(self):
    return [c for c in self._commands if isinstance(c, LiveCommand)]


def _matches_filters(status, command, filters):
    for item in filters or []:
        key, value = item.get("key") or item.get("Key"), item.get("value") or item.get("Value") or ""
        if key == "Status":
            if status != value:
                return False
        elif key == "DocumentName":
            if command.document_name != value:
                return False
        elif key == "ExecutionStage":
            complete = status in _TERMINAL
            if (value == "Complete") != complete:
                return False
        elif key in ("InvokedAfter", "InvokedBefore"):
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            if key == "InvokedAfter" and command.requested_date_time < moment:
                return False
            if key == "InvokedBefore" and command.requested_date_time > moment:
                return False
        else:
            raise InvalidFilterKey(f"The specified filter key is not valid: {key}")
    return True


def list_commands(self, command_id=None, instance_id=None, max_results=None, next_token=None, filters=None):
    """ListCommands: newest first, live status and counts, filters and pagination."""
    with _lock:
        commands = list(reversed(_live(self)))
        if command_id:
            commands = [c for c in commands if c.command_id == command_id]
            if not commands:
                raise InvalidCommandId("Invalid command id.")
        if instance_id:
            commands = [c for c in commands if any(i.instance_id == instance_id for i in c.invocations)]
        commands = [c for c in commands if _matches_filters(c.status, c, filters)]
        views = [c.response_object() for c in commands]
    return ssm_nodes.paginate(views, max_results or 50, next_token)


def list_command_invocations(self, command_id=None, instance_id=None, max_results=None, next_token=None,
                             filters=None, details=False):
    """ListCommandInvocations: every invocation of the matching commands (Details adds plugins)."""
    with _lock:
        views = []
        for command in reversed(_live(self)):
            if command_id and command.command_id != command_id:
                continue
            for invocation in command.invocations:
                if instance_id and invocation.instance_id != instance_id:
                    continue
                if _matches_filters(invocation.status, command, filters):
                    views.append(invocation.list_view(details))
    return ssm_nodes.paginate(views, max_results or 50, next_token)


def get_command_invocation(self, command_id, instance_id, plugin_name=None):
    """GetCommandInvocation: one node's (one step's) live status and output."""
    with _lock:
        for command in _live(self):
            if command.command_id == command_id:
                for invocation in command.invocations:
                    if invocation.instance_id == instance_id:
                        return invocation.get_view(plugin_name)
    raise InvocationDoesNotExist("The command invocation does not exist.")


def cancel_command(self, command_id, instance_ids=None):
    """CancelCommand: pending invocations are cancelled, running steps killed (Cancelled, 137)."""
    with _lock:
        matches = [c for c in _live(self) if c.command_id == command_id]
        if not matches:
            raise InvalidCommandId("Invalid command id.")
        command = matches[0]
        if not instance_ids:
            command.cancelled = True
        for invocation in command.invocations:
            if instance_ids and invocation.instance_id not in instance_ids:
                continue
            if invocation.terminal:
                continue
            invocation.cancelled = True
            if invocation.status == "Pending":
                invocation.end_unrun("Cancelled", "Cancelled")
            elif invocation.process is not None:
                _kill(invocation.process)
        _changed_state(command)


# ---------------------------------------------------------------------------------------------
# Response handlers


def _response_describe_instance_information(self):
    result = self.ssm_backend.describe_instance_information(
        self._get_param("Filters"),
        self._get_param("InstanceInformationFilterList"),
        self._get_param("MaxResults"),
        self._get_param("NextToken"),
    )
    return ActionResult(result)


def _response_send_command(self):
    command = self.ssm_backend.send_command(
        comment=self._get_param("Comment", ""),
        document_name=self._get_param("DocumentName"),
        document_version=self._get_param("DocumentVersion"),
        timeout_seconds=self._get_param("TimeoutSeconds"),
        instance_ids=self._get_param("InstanceIds", []),
        max_concurrency=self._get_param("MaxConcurrency"),
        max_errors=self._get_param("MaxErrors"),
        notification_config=self._get_param("NotificationConfig"),
        output_s3_bucket_name=self._get_param("OutputS3BucketName", ""),
        output_s3_key_prefix=self._get_param("OutputS3KeyPrefix", ""),
        output_s3_region=self._get_param("OutputS3Region", ""),
        parameters=self._get_param("Parameters", {}),
        service_role_arn=self._get_param("ServiceRoleArn", ""),
        targets=self._get_param("Targets", []),
    )
    return ActionResult({"Command": command.sent_response})


def _response_list_commands(self):
    page, token = self.ssm_backend.list_commands(
        command_id=self._get_param("CommandId"),
        instance_id=self._get_param("InstanceId"),
        max_results=self._get_param("MaxResults"),
        next_token=self._get_param("NextToken"),
        filters=self._get_param("Filters"),
    )
    result = {"Commands": page}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


def _response_list_command_invocations(self):
    page, token = self.ssm_backend.list_command_invocations(
        command_id=self._get_param("CommandId"),
        instance_id=self._get_param("InstanceId"),
        max_results=self._get_param("MaxResults"),
        next_token=self._get_param("NextToken"),
        filters=self._get_param("Filters"),
        details=bool(self._get_param("Details", False)),
    )
    result = {"CommandInvocations": page}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


def _response_get_command_invocation(self):
    return ActionResult(
        self.ssm_backend.get_command_invocation(
            self._get_param("CommandId"), self._get_param("InstanceId"), self._get_param("PluginName")
        )
    )


def _response_cancel_command(self):
    self.ssm_backend.cancel_command(self._get_param("CommandId"), self._get_param("InstanceIds"))
    return ActionResult({})


def install():
    """Replaces moto's Run Command with the live one and adds the operations moto lacks."""
    SimpleSystemManagerBackend.describe_instance_information = ssm_nodes.describe_instance_information
    SimpleSystemManagerBackend.send_command = send_command
    SimpleSystemManagerBackend.list_commands = list_commands
    SimpleSystemManagerBackend.list_command_invocations = list_command_invocations
    SimpleSystemManagerBackend.get_command_invocation = get_command_invocation
    SimpleSystemManagerBackend.cancel_command = cancel_command
    SimpleSystemManagerResponse.describe_instance_information = _response_describe_instance_information
    SimpleSystemManagerResponse.send_command = _response_send_command
    SimpleSystemManagerResponse.list_commands = _response_list_commands
    SimpleSystemManagerResponse.list_command_invocations = _response_list_command_invocations
    SimpleSystemManagerResponse.get_command_invocation = _response_get_command_invocation
    SimpleSystemManagerResponse.cancel_command = _response_cancel_command

