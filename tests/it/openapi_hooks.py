"""Schemathesis hooks for tests/it/openapi.rs: sign the webhooks it makes.

Unsigned, every generated webhook would stop at the signature check (401),
and the intake behind it (parsing, redaction, the commit, duplicates) would
never meet hostile input. A JSON case that carries an `X-IL-Signature` header
gets a valid IL signature over the exact bytes sent, with the secret in
VBRIDGE_TEST_WEBHOOK_SECRET; the other cases stay as generated, so the
refusals of missing and wrong signatures are exercised too.
"""

import hashlib
import hmac
import json
import os
import time

import schemathesis
from schemathesis.core import NOT_SET

SECRET = os.environ["VBRIDGE_TEST_WEBHOOK_SECRET"].encode()


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path != "/webhooks/verification" or case.body is NOT_SET:
        return
    if case.media_type != "application/json" or "X-IL-Signature" not in (case.headers or {}):
        return
    body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    timestamp = str(int(time.time()))
    mac = hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    # Bytes are sent as they are: the signature covers exactly what goes out.
    case.body = body
    case.headers["X-IL-Timestamp"] = timestamp
    case.headers["X-IL-Signature"] = "v1=" + mac
