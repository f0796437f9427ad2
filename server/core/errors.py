"""One error shape everywhere: RFC 9457 problem details.

Services raise `Problem`; the HTTP layer renders it as `application/problem+json` and the socket.io
layer as `{ok: false, error: {code, message}}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    return f"urn:brygga:problem:{code}"


class Problem(Exception):
    """A client-facing error with a stable code and a message that says what to do."""

    status = 400

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status
        self.title = title or code.replace("_", " ").capitalize()
        self.errors = errors
        self.headers = headers or {}

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": problem_type(self.code),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body

    def to_ack(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.detail}
        if self.errors:
            error["errors"] = self.errors
        return {"ok": False, "error": error}


class NotFound(Problem):
    status = 404

    def __init__(self, what: str = "resource") -> None:
        super().__init__("not_found", f"No such {what}. Check the id, or whether you have access to it.")


class Forbidden(Problem):
    status = 403

    def __init__(self, detail: str = "You do not have permission to do this.") -> None:
        super().__init__("forbidden", detail)


class Unauthorized(Problem):
    status = 401

    def __init__(self, detail: str = "Log in, or send a valid bearer token, and try again.") -> None:
        super().__init__("unauthorized", detail)


class Conflict(Problem):
    status = 409

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)


def validation_problem(errors: Sequence[Mapping[str, Any]], where: str = "request body") -> Problem:
    """Turn pydantic errors into a 422 problem without echoing the offending values (may be PII)."""
    cleaned = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in errors
    ]
    first = cleaned[0] if cleaned else {"loc": [], "msg": "invalid"}
    location = ".".join(first["loc"]) or where
    return Problem(
        "validation_error",
        f"The {where} is not valid: {location}: {first['msg']}. Fix the listed fields and send again.",
        status=422,
        title="Validation error",
        errors=cleaned,
    )


class ClientGone(Exception):
    """The client hung up before its request body arrived: there is nobody left to answer."""
