"""Declarative API routes: one decorator validates input with pydantic and feeds the OpenAPI document.

Transport handlers stay thin: they receive validated models and return a model (or a Response);
the same models produce `/api/openapi.json`, so the spec cannot drift from what is enforced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError

from server.core.context import ctx_of
from server.core.errors import ClientGone, NotFound, Problem, validation_problem

Security = Literal["public", "user"]
Handler = Callable[..., Awaitable[Any]]

PATH_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")


def json_integer(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer")
    return value


# An `int` body field that accepts exactly what JSON Schema's "integer" accepts: 5 and 5.0, but not
# true or "5" (pydantic's lax int takes those, which schemathesis reports as schema violations).
# For an optional field put the bounds first so they reach the schema:
# `Annotated[int, Field(ge=1), BeforeValidator(json_integer)] | None`.
JsonInt = Annotated[int, BeforeValidator(json_integer)]

EARLIEST_YEAR, LATEST_YEAR = 1900, 9000


def within_calendar(value: datetime) -> datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"give a time between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


# A datetime from a client: the server converts it between time zones and steps days around it, which
# near year 1 or 9999 leaves Python's calendar (OverflowError, a 500); such a time is a 422 instead.
Instant = Annotated[datetime, AfterValidator(within_calendar)]

# A calendar month from a client, YYYY-MM (statistics periods).
Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]

# The largest value a BIGINT column (SQLite and PostgreSQL) holds: cursors and sequence numbers from clients
# are bounded by it, so an absurd one is a 422, never a database overflow.
MAX_SQL_INT = 2**63 - 1


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: list[str]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    security: Security = "user"
    errors: tuple[int, ...] = ()
    description: str = ""
    content_type: str = "application/json"
    raw_body: str | None = None  # documented request media type for non-JSON bodies (uploads)
    extra_responses: dict[str, Any] = field(default_factory=dict)

    @property
    def openapi_path(self) -> str:
        return PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class ApiRouter:
    """Collects operations for one domain; `server.app` mounts every router."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tags: list[str],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        security: Security = "user",
        errors: tuple[int, ...] = (),
        description: str = "",
        content_type: str = "application/json",
        raw_body: str | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    handler=handler,
                    summary=summary,
                    tags=tags,
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    security=security,
                    errors=errors,
                    description=description,
                    content_type=content_type,
                    raw_body=raw_body,
                )
            )
            return handler

        return register


def path_uuid(request: web.Request, name: str, what: str) -> uuid.UUID:
    """A UUID path parameter; a malformed one is simply an unknown resource (404)."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound(what) from None


def to_response(result: Any, status: int = 200) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    if result is None:
        return web.Response(status=204)
    text = result.model_dump_json(by_alias=True) if isinstance(result, BaseModel) else json.dumps(result, default=str)
    return web.Response(text=text, status=status, content_type="application/json")


# C0 controls other than tab, newline and carriage return, and DEL. PostgreSQL refuses NUL in text (a 500
# there, stored on SQLite) and the others have no place in subjects, names or bodies: refused alike on
# every backend, at the edge (REST bodies and query strings, socket.io events, the login form).
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(value: Any) -> bool:
    """True if any string in a JSON value (keys included) holds a refused control character."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if CONTROL_CHARACTERS.search(item):
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return False


def control_characters_problem(where: str) -> Problem:
    return Problem(
        "control_characters",
        f"The {where} contains a control character (such as NUL); remove it and send again.",
        status=422,
    )


def request_timeout_problem() -> Problem:
    return Problem("request_timeout", "The request body arrived too slowly; send it again.", status=408)


@contextlib.asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """A whole small body (JSON, a form) must arrive within `body_timeout_seconds`, else 408."""
    try:
        async with asyncio.timeout(ctx_of(request).settings.body_timeout_seconds):
            yield
    except TimeoutError:
        raise request_timeout_problem() from None
    except ConnectionResetError:  # aiohttp's "Connection lost" while the body was still arriving
        raise ClientGone() from None


async def body_chunks(request: web.Request, size: int) -> AsyncIterator[bytes]:
    """An upload's body in chunks; the client may pause at most `body_timeout_seconds` between them."""
    idle = ctx_of(request).settings.body_timeout_seconds
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await request.content.read(size)
        except TimeoutError:
            raise request_timeout_problem() from None
        except ConnectionResetError:
            raise ClientGone() from None
        if not chunk:
            return
        yield chunk


async def read_json(request: web.Request) -> Any:
    """Read a JSON body, turning every way it can be wrong into a problem."""
    if request.content_type not in ("application/json", "application/merge-patch+json", ""):
        raise Problem(
            "unsupported_media_type",
            f"Send the body as application/json (got {request.content_type}).",
            status=415,
        )
    async with body_deadline(request):
        raw = await request.read()  # aiohttp enforces client_max_size here (413)
    if not raw:
        raise Problem("body_required", "This request needs a JSON body.", status=400)
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # also integers over 4,300 digits and deep nesting
        position = getattr(exc, "pos", None)
        where = f" near byte {position}" if position is not None else ""
        raise Problem("malformed_json", f"The body is not valid JSON{where}. Fix the syntax and send again.") from None
    if has_control_characters(payload):
        raise control_characters_problem("request body")
    return payload


def parse_query(model: type[BaseModel], request: web.Request) -> BaseModel:
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    if has_control_characters(data):
        raise control_characters_problem("query string")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc.errors(), "query string") from None


def parse_body(model: type[BaseModel], payload: Any) -> BaseModel:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_problem(exc.errors()) from None


def make_aiohttp_handler(operation: Operation, authenticate: Callable[[web.Request], Awaitable[None]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if operation.security == "user":
            await authenticate(request)
        kwargs: dict[str, Any] = {}
        if operation.query is not None:
            kwargs["query"] = parse_query(operation.query, request)
        if operation.body is not None:
            kwargs["body"] = parse_body(operation.body, await read_json(request))
        result = await operation.handler(request, **kwargs)
        return to_response(result, operation.status)

    handler.__name__ = operation.operation_id
    return handler


# --------------------------------------------------------------------------------------------- OpenAPI

STATUS_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed (stale If-Match)",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Validation error",
    428: "Precondition required (send If-Match)",
    429: "Too many requests",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


class OpenApiBuilder:
    def __init__(self, title: str, version: str, description: str) -> None:
        self.document: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": description},
            "servers": [{"url": "/"}],
            "paths": {},
            "components": {
                "schemas": {"Problem": PROBLEM_SCHEMA},
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "description": "Personal access token."},
                    "session": {"type": "apiKey", "in": "cookie", "name": "brygga_session"},
                },
            },
        }

    def _register(self, name: str, definition: dict[str, Any]) -> None:
        """Add a component schema; two different models with one name would silently overwrite each other."""
        schemas = self.document["components"]["schemas"]
        if name in schemas and schemas[name] != definition:
            raise ValueError(f"two different API models are named {name!r}; rename one")
        schemas[name] = definition

    def _schema_ref(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        for name, definition in schema.pop("$defs", {}).items():
            self._register(name, definition)
        self._register(model.__name__, schema)
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def _query_parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        for name, definition in schema.pop("$defs", {}).items():
            self._register(name, definition)
        required = set(schema.get("required", []))
        params = []
        for name, prop in schema.get("properties", {}).items():
            description = prop.pop("description", None)
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
        return params

    def add(self, op: Operation) -> None:
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": op.tags,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in PATH_PARAM.findall(op.path)
            ],
            "responses": {},
        }
        if op.description:
            entry["description"] = op.description
        if op.query is not None:
            entry["parameters"].extend(self._query_parameters(op.query))
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self._schema_ref(op.body)}},
            }
        elif op.raw_body:
            entry["requestBody"] = {
                "required": True,
                "content": {op.raw_body: {"schema": {"type": "string", "format": "binary"}}},
            }
        if op.status == 204 or (op.response is None and op.status == 204):
            entry["responses"]["204"] = {"description": "Done"}
        else:
            content: dict[str, Any] = {}
            if op.response is not None:
                content = {op.content_type: {"schema": self._schema_ref(op.response)}}
            entry["responses"][str(op.status)] = {"description": "Success", **({"content": content} if content else {})}
        statuses = set(op.errors) | {400, 422} if (op.body or op.query) else set(op.errors)
        if op.body is not None or op.raw_body:
            statuses |= {413, 415}  # read_json: body too large, not application/json
        if op.security == "user":
            statuses |= {401, 403}
            entry["security"] = [{"bearer": []}, {"session": []}]
        else:
            entry["security"] = []
        for status in sorted(statuses):
            entry["responses"][str(status)] = {"description": STATUS_TEXT.get(status, "Error"), "content": problem}
        self.document["paths"].setdefault(op.openapi_path, {})[op.method.lower()] = entry
