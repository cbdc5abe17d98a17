"""The SSM error codes the emulator's SSM agent answers with, as moto service errors."""

from moto.ssm.exceptions import SSMException


class _Error(SSMException):
    """An SSM error whose code is the class's `code`, answered as HTTP 400."""

    def __init__(self, message):
        super().__init__(self.code, message)


class InvalidParameters(_Error):
    code = "InvalidParameters"


class InvalidInstanceId(_Error):
    code = "InvalidInstanceId"


class InvalidDocumentVersion(_Error):
    code = "InvalidDocumentVersion"


class InvocationDoesNotExist(_Error):
    code = "InvocationDoesNotExist"


class InvalidPluginName(_Error):
    code = "InvalidPluginName"


class InvalidCommandId(_Error):
    code = "InvalidCommandId"


class InvalidTarget(_Error):
    code = "InvalidTarget"


class InvalidNextToken(_Error):
    code = "InvalidNextToken"

