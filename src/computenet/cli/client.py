"""HTTP client helpers shared by ``submit``, ``jobs``, ``explain`` and ``tenants``."""

from __future__ import annotations

import os
from typing import Any

from computenet.errors import AuthError, ComputenetError, InputError, NotFoundError


def call(method: str, path: str, url: str | None, token: str | None, **kwargs: Any) -> Any:
    """Send one request to the service; errors come back as one-line ComputenetErrors."""
    import httpx

    base = url or os.environ.get("COMPUTENET_URL", "http://127.0.0.1:8000")
    tok = token or os.environ.get("COMPUTENET_TOKEN")
    if not tok:
        raise InputError("no token", source="--token", fix="pass --token or set COMPUTENET_TOKEN")
    headers = {"Authorization": f"Bearer {tok}", **kwargs.pop("headers", {})}
    try:
        resp = httpx.request(
            method, base.rstrip("/") + path, headers=headers, timeout=30.0, **kwargs
        )
    except httpx.HTTPError as exc:
        raise ComputenetError(
            f"cannot reach the service at {base} ({exc}); is `computenet serve` running?"
        ) from exc
    if resp.status_code == 204:  # done, nothing to say (a DELETE)
        return None
    if resp.status_code < 400:
        return resp.json()
    try:
        detail = resp.json().get("detail", resp.text)
    except ValueError:
        detail = resp.text
    if resp.status_code == 401:
        raise AuthError(str(detail))
    if resp.status_code == 404:
        raise NotFoundError(str(detail))
    if resp.status_code == 422:
        raise InputError(str(detail))
    raise ComputenetError(f"HTTP {resp.status_code}: {detail}")
