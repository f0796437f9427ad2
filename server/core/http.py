"""HTTP middlewares: problem-JSON errors, security headers, request log and metrics."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.exc import IntegrityError

from server.core.context import ctx_of
from server.core.errors import PROBLEM_CONTENT_TYPE, ClientGone, Problem
from server.settings import Settings

log = logging.getLogger("brygga.http")

CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection before the answer"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

# The web app's icons and manifest (server/web.py): fixed names, so cached for a day rather than for ever.
WEB_APP_FILES = ("/icons/", "/favicon.ico", "/manifest.webmanifest")

HTTP_PROBLEMS = {
    404: ("not_found", "There is no such resource. Check the URL; the API lives under /api/v1."),
    405: ("method_not_allowed", "This URL does not accept that method; see the Allow header."),
    413: ("payload_too_large", "The request body is too large. Send less, or upload files separately."),
    415: ("unsupported_media_type", "Send the body as application/json."),
}


def _forwarded_for(header: str) -> list[str]:
    """The `for=` addresses of an RFC 7239 `Forwarded` header, in order (quotes, brackets, ports removed)."""
    found = []
    for element in header.split(","):
        for pair in element.split(";"):
            key, _, value = pair.strip().partition("=")
            if key.lower() == "for":
                value = value.strip().strip('"')
                if value.startswith("["):
                    value = value[1:].partition("]")[0]
                elif value.count(":") == 1:
                    value = value.partition(":")[0]
                found.append(value)
    return found


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(request: web.Request) -> str | None:
    """The client's address for rate limits and the audit log.

    The socket's peer, unless that peer is one of `BRYGGA_TRUSTED_PROXIES`: then the forwarding chain
    (`Forwarded`, else `X-Forwarded-For`) is read from the right, skipping trusted proxies, and the
    first address not trusted is the client. Headers from anyone else are ignored (they are forgeable).
    """
    peer = request.remote
    trusted = ctx_of(request).settings.trusted_proxy_networks
    peer_address = _address(peer or "")
    if not trusted or peer_address is None or not any(peer_address in network for network in trusted):
        return peer
    forwarded = request.headers.get("Forwarded")
    chain = _forwarded_for(forwarded) if forwarded else request.headers.get("X-Forwarded-For", "").split(",")
    for hop in reversed(chain):
        address = _address(hop)
        if address is None:
            return peer  # an unusable entry: do not guess past it
        if not any(address in network for network in trusted):
            return str(address)
    return peer


def problem_response(problem: Problem, request: web.Request | None = None) -> web.Response:
    body = problem.to_dict(instance=request.path if request is not None else None)
    response = web.json_response(body, status=problem.status, content_type=PROBLEM_CONTENT_TYPE)
    response.headers.update(problem.headers)
    return response


def problem_from_http_exception(exc: web.HTTPException) -> Problem:
    code, detail = HTTP_PROBLEMS.get(exc.status, ("http_error", exc.reason))
    headers = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    return Problem(code, detail, status=exc.status, title=exc.reason, headers=headers)


def route_template(request: web.Request) -> str:
    """The route pattern (e.g. /api/v1/units/{id}), so ids never reach logs or metric labels."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


class Metrics:
    """Prometheus metrics in a per-app registry (several apps can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "brygga_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "brygga_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def build_middlewares(settings: Settings, metrics: Metrics) -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = CLIENT_CLOSED  # aiohttp cancels the handler when the client hangs up: not a server error
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(request)
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(request.method, route).observe(elapsed)
            log.info(
                "request",
                extra={"method": request.method, "route": route, "status": status, "ms": round(elapsed * 1000, 2)},
            )

    @web.middleware
    async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as problem:
            return problem_response(problem, request)
        except ClientGone:
            # `web.run_app` lets a handler go on after its client hung up; the body read then fails.
            return web.Response(status=CLIENT_CLOSED)  # logged as 499 by `observe`, never sent
        except IntegrityError:
            # A uniqueness or reference rule in the database refused the write (e.g. a duplicate HSA-id
            # sent concurrently): the caller's data conflicts with what exists; nothing was changed.
            conflict = Problem(
                "conflict",
                "This conflicts with an existing record (for example a duplicate id). Change it and retry.",
                status=409,
            )
            return problem_response(conflict, request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem_response(problem_from_http_exception(exc), request)
        except Exception:
            # Last-resort handler (ASVS 16.5.4): log the trace, show nothing internal.
            log.exception("unhandled error", extra={"route": route_template(request)})
            internal = Problem("internal", "Something went wrong on the server. Try again later.", status=500)
            return problem_response(internal, request)

    return [observe, problems]


def security_headers(settings: Settings) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """Headers for every response, set as it is prepared: a middleware would run after a streamed
    response (an attachment download) had already sent its headers. A handler's own value wins."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault(
            "Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=()"
        )
        if settings.is_https:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        cacheable = response.status in (200, 304)  # a 304 refreshes the cached copy's headers: same rules
        if request.path.startswith(WEB_APP_FILES) and cacheable:
            headers.setdefault("Cache-Control", "public, max-age=86400")  # not hashed: checked again daily
        elif request.path.startswith("/assets/") and cacheable:
            headers.setdefault("Cache-Control", "public, max-age=31536000, immutable")  # hashed names
        else:
            headers.setdefault("Cache-Control", "no-store")

    return add
