"""OCI API-key request signatures, verified the way OCI checks what its SDKs send."""
import base64
import hashlib
import re
import time
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import current_app, request
from peewee import IntegrityError

from gateway.db import database
from gateway.exceptions import Unauthenticated
from gateway.models import SeenSignature
from gateway.services import principals

ALWAYS_SIGNED = ("date", "(request-target)", "host")
SIGNED_WITH_BODY = ("content-length", "content-type", "x-content-sha256")
BODY_METHODS = ("POST", "PUT", "PATCH")
MAX_SKEW_SECONDS = 300
_PARAMETER = re.compile(r'(\w+)="([^"]*)"')


def verify(parameters_text):
    """The principal whose registered key signed this request, or Unauthenticated."""
    parameters = dict(_PARAMETER.findall(parameters_text))
    if parameters.get("algorithm", "rsa-sha256") != "rsa-sha256" or parameters.get(
            "version", "1") != "1" or not parameters.get("keyId") or not parameters.get("signature"):
        raise Unauthenticated("Malformed Signature authorization header.")
    signed = parameters.get("headers", "date").lower().split()
    with_body = request.method in BODY_METHODS or _has_body()
    _check_coverage(signed, with_body)
    _check_date()
    _check_host()
    if with_body:
        _check_body_digest()
    signature = _decode_strictly(parameters["signature"])
    principal, public_key = principals.by_key_id(parameters["keyId"])
    if principal is None:
        raise Unauthenticated("Unknown API key.")
    _check_signature(public_key, signature, signed)
    _refuse_replay(parameters["keyId"], signature)
    return principal


def _has_body():
    # A body the gateway could read (DELETE routes read one) must be signed, whatever the verb.
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", "").lower()


def _decode_strictly(text):
    """The signature's bytes; anything but canonical base64 (a prefix, padding games) is 401."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except ValueError:
        decoded = None
    if not decoded or base64.b64encode(decoded).decode() != text:
        raise Unauthenticated("The request signature does not verify.")
    return decoded


def _check_host():
    hosts = {host.lower() for host in current_app.config["PUBLIC_HOSTS"]}
    given = request.headers.get("host", "").lower()
    name = given.rsplit(":", 1)[0] if not given.endswith("]") else given  # without its port
    if hosts and given not in hosts and name not in hosts:
        raise Unauthenticated("The signed host header is not one of the gateway's names.")


def _check_coverage(signed, with_body):
    needed = ALWAYS_SIGNED + (SIGNED_WITH_BODY if with_body else ())
    missing = [name for name in needed if name not in signed]
    if missing:
        raise Unauthenticated(f"The signature must cover the headers: {', '.join(missing)}.")


def _check_date():
    try:
        sent = parsedate_to_datetime(request.headers.get("date", "")).timestamp()
    except (TypeError, ValueError):
        raise Unauthenticated("The request's date header is missing or invalid.") from None
    if abs(time.time() - sent) > MAX_SKEW_SECONDS:
        raise Unauthenticated("The request's date is more than 5 minutes away from the "
                              "server's clock.")


def _check_body_digest():
    digest = base64.b64encode(hashlib.sha256(request.get_data(cache=True)).digest()).decode()
    if request.headers.get("x-content-sha256") != digest:
        raise Unauthenticated("x-content-sha256 does not match the request body.")


def _signing_string(signed):
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {_request_target()}")
        elif name in request.headers:
            lines.append(f"{name}: {request.headers[name]}")
        else:
            raise Unauthenticated(f"The signed header {name} is missing from the request.")
    return "\n".join(lines).encode()


def _request_target():
    # The path as sent, still percent-encoded: the client signed those bytes.
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return raw
    query = request.query_string.decode("latin-1")
    return quote(request.path) + (f"?{query}" if query else "")


def _check_signature(public_key_pem, signature, signed):
    try:
        key = load_pem_public_key(public_key_pem.encode())
        key.verify(signature, _signing_string(signed), PKCS1v15(), SHA256())
    except (InvalidSignature, ValueError, TypeError):
        raise Unauthenticated("The request signature does not verify.") from None


def _refuse_replay(key_id, signature):
    """Remember what was verified (the key and the signature's bytes), not its spelling."""
    now = time.time()
    digest = hashlib.sha256(key_id.encode() + b"\0" + signature).hexdigest()
    try:
        with database.atomic():
            SeenSignature.delete().where(SeenSignature.expires_at < now * 1000).execute()
            SeenSignature.insert(digest=digest,
                                 expires_at=int((now + 2 * MAX_SKEW_SECONDS) * 1000)).execute()
    except IntegrityError:
        raise Unauthenticated("This signed request was already used.") from None
