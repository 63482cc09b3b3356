"""Errors mapped to HTTP in ONE place. Every error answers ``ErrorOut`` JSON."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from computenet.api.deps import RateLimited
from computenet.api.schemas import ErrorOut
from computenet.errors import (
    AuthError,
    ComputenetError,
    ConflictError,
    ExecutorUnavailable,
    ForbiddenError,
    InputError,
    NotFoundError,
)

log = logging.getLogger("computenet.api")

STATUS: list[tuple[type[ComputenetError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (AuthError, 401, "unauthorized"),
    (ForbiddenError, 403, "forbidden"),
    (InputError, 422, "invalid"),
    (RateLimited, 429, "rate_limited"),
    (ExecutorUnavailable, 503, "site_unavailable"),
]

# Response docs for OpenAPI (so schemathesis knows these statuses are expected).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": name}
    for code, name in [
        (400, "malformed request (a body that cannot be parsed at all)"),
        (401, "missing or invalid token"),
        (403, "role may not do this"),
        (404, "unknown id"),
        (409, "conflicts with the current state"),
        (413, "body too large"),
        (422, "invalid field"),
        (429, "too many requests"),
    ]
}


def error_json(
    status: int,
    error: str,
    detail: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": error, "detail": detail, "fields": fields or []}
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ComputenetError)
    async def _domain(_: Request, exc: ComputenetError) -> JSONResponse:
        for cls, status, name in STATUS:
            if isinstance(exc, cls):
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                fields = None
                if isinstance(exc, InputError) and (exc.where or exc.source):
                    where = exc.where or exc.source or ""
                    fields = [{"field": where, "reason": exc.message}]
                return error_json(status, name, str(exc), fields, headers=headers)
        return error_json(400, "error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
                "reason": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        text = "; ".join(f"{f['field']}: {f['reason']}" for f in fields)
        return error_json(422, "invalid", text, fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_json(exc.status_code, "http", str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _last_resort(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a user error: log it with the trace, answer a structured 503 so the
        # client may retry; never a bare 500.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_json(503, "internal", "the server hit an unexpected error; retry later")
