"""Verifying AWS Signature Version 4 on requests to the EKS API.

The signature is recomputed with botocore's own signer (the code that made it on the
client's side) over the request as received: the headers the client says it signed,
the raw path and query, the body and its X-Amz-Date. Only the comparison and the
checks AWS makes before it (scope, clock skew, known key) are ours. Refusals use the
codes and wording of AWS's front end, so clients and users recognise them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from nodeless.fargate.eksapi.errors import AwsError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
SERVICE = "eks"

_MISMATCH = ("The request signature we calculated does not match the signature you "
             "provided. Check your AWS Secret Access Key and signing method. Consult the "
             "service documentation for details.")
_BAD_TOKEN = "The security token included in the request is invalid."


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs of an HTTP request, independent of the server library."""

    method: str
    raw_path: str
    """Path and query exactly as received (still percent-encoded)."""
    headers: Mapping[str, str] | Any
    """Any mapping; a multidict's repeated headers are all seen (through `items()`)."""
    body: bytes

    def values(self, name: str) -> list[str]:
        """Every value of header `name`, whatever the case of its name."""
        wanted = name.lower()
        return [str(v) for k, v in self.headers.items() if k.lower() == wanted]

    def header(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None


class _Verifier(SigV4Auth):
    """botocore's SigV4 signer, made to sign exactly the headers the client listed:
    its default choice drops some (User-Agent, ...) that another client may sign."""

    def __init__(self, credentials: Credentials, region: str, signed: list[str]) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                chosen[name.lower()] = value
        return chosen


def verify(request: SignedRequest, secret_for: Callable[[str], str | None], region: str,
           now: datetime | None = None) -> str:
    """Return the access key id that signed `request`; raise AwsError when it is unsigned,
    badly signed, signed for another region/service/day, stale, or by an unknown key."""
    auth = request.header("Authorization")
    if not auth:
        raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")
    algorithm, _, rest = auth.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AwsError("IncompleteSignatureException",
                       f"Unsupported AWS 'algorithm': '{algorithm}'; nodeless accepts "
                       f"'{ALGORITHM}' (Signature Version 4) only")
    parts = _auth_parts(rest)
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not parts.get(k)]
    if missing:
        raise AwsError("IncompleteSignatureException", " ".join(
            f"Authorization header requires '{k}' parameter." for k in missing)
            + f" Authorization={auth}")
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AwsError("IncompleteSignatureException", (
            f"Credential should be scoped to a valid region, service and terminated by "
            f"'aws4_request': '{parts['Credential']}'"))
    key_id, day, scope_region, service, _ = scope
    if request.header("X-Amz-Security-Token"):
        raise AwsError("UnrecognizedClientException", _BAD_TOKEN)
    secret = secret_for(key_id)
    if secret is None:
        raise AwsError("UnrecognizedClientException", _BAD_TOKEN)
    signed = sorted(h.strip().lower() for h in parts["SignedHeaders"].split(";") if h.strip())
    for required in ("host", "x-amz-date"):
        if required not in signed:
            raise AwsError("IncompleteSignatureException", (
                f"'{required}' must be a 'SignedHeader' in the AWS Authorization."))
    stamp = _check_date(request.header("X-Amz-Date"), now or datetime.now(UTC))
    if day != stamp[:8]:
        raise AwsError("InvalidSignatureException", (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{day}' != '{stamp[:8]}', from '{stamp}'."))
    if scope_region != region:
        raise AwsError("InvalidSignatureException", (
            f"Credential should be scoped to a valid region. This endpoint serves region "
            f"'{region}', not '{scope_region}'."))
    if service != SERVICE:
        raise AwsError("InvalidSignatureException",
                       f"Credential should be scoped to correct service: '{SERVICE}'.")
    declared = request.header("X-Amz-Content-SHA256")
    if declared and declared != hashlib.sha256(request.body).hexdigest():
        raise AwsError("InvalidSignatureException", (
            "X-Amz-Content-SHA256 is not the SHA-256 of the body: nodeless accepts signed "
            "payloads only"))
    expected = _signature(request, key_id, secret, region, signed, stamp)
    if not hmac.compare_digest(expected.encode(), parts["Signature"].encode()):
        raise AwsError("InvalidSignatureException", _MISMATCH)
    return key_id


def _signature(request: SignedRequest, key_id: str, secret: str, region: str,
               signed: list[str], stamp: str) -> str:
    headers = HTTPHeaders()
    for name in signed:
        values = request.values(name)
        if not values:  # a header it signed is not there: it cannot match
            raise AwsError("InvalidSignatureException", _MISMATCH)
        for value in values:
            headers[name] = value
    host = request.header("Host") or "localhost"
    aws_request = AWSRequest(method=request.method, url=f"https://{host}{request.raw_path}",
                             headers=headers, data=request.body)
    aws_request.context["timestamp"] = stamp
    signer = _Verifier(Credentials(key_id, secret), region, signed)
    canonical = signer.canonical_request(aws_request)
    return str(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))


def _check_date(value: str | None, now: datetime) -> str:
    if not value:
        raise AwsError("IncompleteSignatureException", (
            "Authorization header requires existence of a 'X-Amz-Date' header."))
    try:
        when = datetime.strptime(value, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError as exc:
        raise AwsError("IncompleteSignatureException", (
            f"X-Amz-Date must be in ISO-8601 basic format (YYYYMMDD'T'HHMMSS'Z'): "
            f"'{value}'")) from exc
    fmt = SIGV4_TIMESTAMP
    if when < now - MAX_SKEW:
        raise AwsError("InvalidSignatureException", (
            f"Signature expired: {value} is now earlier than "
            f"{(now - MAX_SKEW).strftime(fmt)} ({now.strftime(fmt)} - 15 min.)"))
    if when > now + MAX_SKEW:
        raise AwsError("InvalidSignatureException", (
            f"Signature not yet current: {value} is still later than "
            f"{(now + MAX_SKEW).strftime(fmt)} ({now.strftime(fmt)} + 15 min.)"))
    return value


def _auth_parts(rest: str) -> dict[str, str]:
    parts = {}
    for item in rest.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts[key.strip()] = value.strip()
    return parts

