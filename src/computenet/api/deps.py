"""Request dependencies: who is calling (bearer token), role checks, rate limits."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from computenet.errors import AuthError, ComputenetError, ForbiddenError
from computenet.store.repository import Principal, Repository, hash_token


class RateLimited(ComputenetError):
    """Too many requests from one token (mapped to 429)."""


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class ServiceState:
    """Per-app state: repository, batcher, token cache and rate-limit buckets."""

    repo: Repository
    batcher: Any
    settings: Any
    network: Any = None
    executors: dict[str, Any] = field(default_factory=dict)  # site id -> its executor
    loop: Any = None  # the ControlLoop, when this process runs it
    # token hash -> (principal, cached until monotonic time). Short TTL keeps lookups off
    # the database on the hot path while a deleted token stops working within seconds.
    cache: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    buckets: dict[str, Bucket] = field(default_factory=dict)


CACHE_TTL_S = 10.0


def state(request: Request) -> ServiceState:
    st: ServiceState = request.app.state.service
    return st


bearer = HTTPBearer(auto_error=False, description="a token from POST /v1/tenants")


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller. ``async`` on purpose: a cache hit needs no thread hop (a sync dependency
    would go through the thread pool on every request); a miss reads the database in a
    worker thread."""
    st = state(request)
    if credentials is None or not credentials.credentials.strip():
        raise AuthError("missing bearer token; send 'Authorization: Bearer <token>'")
    token = credentials.credentials.strip()
    digest = hash_token(token)
    now = time.monotonic()
    hit = st.cache.get(digest)
    if hit is not None and hit[1] > now:
        who = hit[0]
    else:
        # Lookups of unknown tokens are limited per client address: a flood of guesses
        # gets 429 before it reaches the database.
        client = "unknown:" + (request.client.host if request.client else "?")
        fail_rate = float(st.settings.auth_fail_per_s)
        fail_burst = float(st.settings.auth_fail_burst)
        if _level(st, client, now, fail_rate, fail_burst) < 1.0:
            raise RateLimited(
                f"more than {fail_rate:g} requests/s with unknown tokens from this address; "
                "check the token and retry later"
            )
        found = await asyncio.to_thread(st.repo.principal_for, token)
        if found is None:
            st.buckets[client].tokens -= 1.0
            raise AuthError("unknown or revoked token")
        who = found
        st.cache[digest] = (who, now + CACHE_TTL_S)
    _rate_limit(st, digest, now)
    return who


MAX_BUCKETS = 100_000
"""Buckets kept at most; past this the full ones (idle callers) are dropped."""


def _level(st: ServiceState, key: str, now: float, rate: float, burst: float) -> float:
    """The bucket ``key`` refilled to ``now`` (created full): the requests it allows."""
    b = st.buckets.get(key)
    if b is None:
        if len(st.buckets) >= MAX_BUCKETS:
            _drop_idle(st, now)
        b = st.buckets[key] = Bucket(tokens=burst, at=now)
    b.tokens = min(burst, b.tokens + (now - b.at) * rate)
    b.at = now
    return b.tokens


def _drop_idle(st: ServiceState, now: float) -> None:
    """Forget buckets idle long enough to be full again under any rate: they would be
    created full anyway."""
    settings = st.settings
    slowest = min(float(settings.rate_per_s), float(settings.auth_fail_per_s))
    most = max(float(settings.rate_burst), float(settings.auth_fail_burst))
    idle_s = most / slowest if slowest > 0 else float("inf")
    for key in [k for k, b in st.buckets.items() if now - b.at >= idle_s]:
        del st.buckets[key]


def _rate_limit(st: ServiceState, key: str, now: float) -> None:
    rate = float(st.settings.rate_per_s)
    if _level(st, key, now, rate, float(st.settings.rate_burst)) < 1.0:
        raise RateLimited(f"more than {rate:g} requests/s from this token; slow down and retry")
    st.buckets[key].tokens -= 1.0


def require(who: Principal, *roles: str) -> None:
    if who.role not in roles:
        raise ForbiddenError(f"role {who.role!r} may not do this; needs one of {roles}")
