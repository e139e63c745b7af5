"""AWS errors as EKS sends them, so botocore raises the class AWS would.

A REST-JSON service answers an error with its HTTP status, the header `x-amzn-ErrorType`
naming the exception, and a JSON body with `message`; botocore takes the code from the
header and the message from the body. Everything the EKS API refuses is an `AwsError`,
turned into that shape in exactly one place (`response`).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

# status codes of EKS's modeled exceptions (botocore's eks service model) and of the
# authentication errors AWS's front end answers before a request reaches the service.
STATUS = {
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
    "ResourceLimitExceededException": 400,
    "ClientException": 400,
    "ResourceNotFoundException": 404,
    "ResourceInUseException": 409,
    "ServerException": 500,
    "ServiceUnavailableException": 503,
    "SerializationException": 400,
    "UnknownOperationException": 404,
    "MissingAuthenticationTokenException": 403,
    "IncompleteSignatureException": 403,
    "InvalidSignatureException": 403,
    "UnrecognizedClientException": 403,
}


class AwsError(Exception):
    """A refusal in AWS's terms: `code` is the exception name botocore raises."""

    def __init__(self, code: str, message: str, **fields: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields
        """Extra members of the exception shape (clusterName, fargateProfileName)."""

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)


def cluster_not_found(name: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"No cluster found for name: {name}.",
                    clusterName=name)


def profile_not_found(cluster: str, name: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"No Fargate Profile found with name: {name}.",
                    clusterName=cluster, fargateProfileName=name)


def response(error: AwsError, request_id: str | None = None) -> web.Response:
    body: dict[str, Any] = {"message": error.message, **error.fields}
    return web.Response(
        status=error.status,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"x-amzn-ErrorType": error.code,
                 "x-amzn-RequestId": request_id or str(uuid.uuid4())},
    )
