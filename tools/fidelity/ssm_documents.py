"""SSM stores every document's content as text.

moto keeps the Content of an AWS::SSM::Document created by CloudFormation as the parsed
object, so GetDocument returns its Python repr and DescribeDocument fails (HTTP 500). Here
such content is stored as JSON (or YAML) text, as SSM stores every document.
"""

import json

import yaml
from moto.ssm.models import Document

_document_init = Document.__init__


def _document_init_with_text(self, account_id, name, version_name, content, document_type, document_format, *args, **kwargs):
    if isinstance(content, dict):
        content = yaml.safe_dump(content) if document_format == "YAML" else json.dumps(content)
    _document_init(self, account_id, name, version_name, content, document_type, document_format, *args, **kwargs)


def install():
    Document.__init__ = _document_init_with_text
