"""Typed API errors. The HTTP layer turns an `APIError` into a Kubernetes `Status` in
exactly one place; everything below it raises these and never builds wire format."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error a client sees as a `Status` object with this code and reason."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: str, name: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"kind": kind}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


class BadRequest(APIError):
    code = 400
    reason = "BadRequest"


class Unauthorized(APIError):
    code = 401
    reason = "Unauthorized"


class Forbidden(APIError):
    code = 403
    reason = "Forbidden"


class NotFound(APIError):
    code = 404
    reason = "NotFound"

    @classmethod
    def object(cls, plural: str, name: str, group: str = "") -> NotFound:
        qualified = f"{plural}.{group}" if group else plural
        return cls(
            f'{qualified} "{name}" not found', details=_details(plural, name, group)
        )


class MethodNotAllowed(APIError):
    code = 405
    reason = "MethodNotAllowed"


class NotAcceptable(APIError):
    code = 406
    reason = "NotAcceptable"


class AlreadyExists(APIError):
    code = 409
    reason = "AlreadyExists"

    @classmethod
    def object(cls, plural: str, name: str, group: str = "") -> AlreadyExists:
        qualified = f"{plural}.{group}" if group else plural
        return cls(
            f'{qualified} "{name}" already exists', details=_details(plural, name, group)
        )


class Conflict(APIError):
    code = 409
    reason = "Conflict"

    @classmethod
    def stale(cls, plural: str, name: str, group: str = "") -> Conflict:
        qualified = f"{plural}.{group}" if group else plural
        return cls(
            f'Operation cannot be fulfilled on {qualified} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            details=_details(plural, name, group),
        )


class Gone(APIError):
    code = 410
    reason = "Expired"


class RequestEntityTooLarge(APIError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(APIError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(APIError):
    """422: the object is well-formed but breaks a rule; `causes` name the fields."""

    code = 422
    reason = "Invalid"

    def __init__(
        self,
        kind: str,
        name: str,
        causes: list[FieldError],
        *,
        group: str = "",
    ) -> None:
        summary = ", ".join(str(c) for c in causes)
        if len(causes) > 1:
            summary = f"[{summary}]"  # as kube's field.ErrorList prints several errors
        qualified = f"{kind}.{group}" if group else kind
        super().__init__(
            f'{qualified} "{name}" is invalid: {summary}',
            details={
                **_details(kind, name, group),
                "causes": [c.cause() for c in causes],
            },
        )
        self.causes = causes


class FieldError:
    """One broken rule on one field, phrased as kube-apiserver's field.Error."""

    def __init__(self, field: str, kind: str, detail: str = "", value: Any = None) -> None:
        self.field = field
        self.kind = kind  # e.g. "Required value", "Invalid value", "Forbidden"
        self.detail = detail
        self.value = value

    def __str__(self) -> str:
        if self.kind == "Invalid value" or self.kind == "Unsupported value":
            shown = f'"{self.value}"' if isinstance(self.value, str) else repr(self.value)
            text = f"{self.field}: {self.kind}: {shown}"
        else:
            text = f"{self.field}: {self.kind}"
        return f"{text}: {self.detail}" if self.detail else text

    def cause(self) -> dict[str, Any]:
        reasons = {
            "Required value": "FieldValueRequired",
            "Invalid value": "FieldValueInvalid",
            "Unsupported value": "FieldValueNotSupported",
            "Forbidden": "FieldValueForbidden",
            "Duplicate value": "FieldValueDuplicate",
            "Too long": "FieldValueTooLong",
            "Too many": "FieldValueTooMany",
        }
        message = str(self).split(": ", 1)[1] if ": " in str(self) else str(self)
        return {"reason": reasons.get(self.kind, "FieldValueInvalid"), "message": message,
                "field": self.field}

    def __repr__(self) -> str:
        return f"FieldError({self})"


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(field, "Required value", detail)


def invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(field, "Invalid value", detail, value)


def forbidden(field: str, detail: str = "") -> FieldError:
    return FieldError(field, "Forbidden", detail)


def unsupported(field: str, value: Any, allowed: list[str]) -> FieldError:
    return FieldError(
        field, "Unsupported value", "supported values: " + ", ".join(f'"{a}"' for a in allowed),
        value,
    )


class TooManyRequests(APIError):
    code = 429
    reason = "TooManyRequests"


class InternalError(APIError):
    code = 500
    reason = "InternalError"


class ServiceUnavailable(APIError):
    code = 503
    reason = "ServiceUnavailable"


class Timeout(APIError):
    code = 504
    reason = "Timeout"
