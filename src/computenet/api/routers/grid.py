"""/v1/grid-events: the grid asks for less power; computenet answers with a commitment and,
afterwards, reports what was delivered (``control.gridops``). Role ``grid-operator`` or
``admin``; every event is audited."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from computenet.api.deps import principal, require, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import GridEventIn, GridEventOut
from computenet.errors import InputError
from computenet.store.repository import Principal, now_s

router = APIRouter(prefix="/v1/grid-events", tags=["grid"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]
ROLES = ("grid-operator", "admin")


def _planner(st: Any) -> Any:
    from computenet.control.planning import Planner

    if st.loop is not None:
        return st.loop.planner
    return Planner(st.repo, st.settings, st.network, st.executors)


def _event(body: GridEventIn, network: Any) -> Any:
    from computenet.engine.grid import GridEvent, check_event, sites_of

    if network is None:
        raise InputError("this service runs without a network: no site can answer", where="site")
    sites = sites_of(network, body.site, body.province)
    now = now_s()
    from computenet.control.gridops import new_event_id

    ev = GridEvent(
        id=new_event_id(),
        site_ids=sites,
        start_s=body.start_s,
        end_s=body.end_s,
        notice_s=body.notice_s if body.notice_s is not None else max(0, body.start_s - now),
        target_kw=None if body.target_mw is None else body.target_mw * 1000.0,
        target_share=None if body.target_pct is None else body.target_pct / 100.0,
    )
    check_event(ev, network, now)
    return ev


@router.post("", status_code=201, response_model=GridEventOut)
async def post_grid_event(body: GridEventIn, request: Request, who: Who) -> JSONResponse:
    """Answer a grid event: the live loop's plan changes at once (work not started is
    deferred or moved, running work is paused at the event's start or runs at lower power
    where its executor can cap it) and the answer says, hour by hour, the MW shed against
    the ask, the jobs affected and the deadline risk (modelled)."""
    require(who, *ROLES)
    st = state(request)
    ev = _event(body, st.network)
    from computenet.control import gridops

    doc = await asyncio.to_thread(
        gridops.answer, st.repo, _planner(st), st.executors, who.tenant_id, ev
    )
    return JSONResponse(doc, status_code=201, headers={"Location": f"/v1/grid-events/{ev.id}"})


@router.get("/{event_id}", response_model=GridEventOut)
def get_grid_event(event_id: str, request: Request, who: Who) -> dict[str, Any]:
    """The event report: the commitment and, per hour, what was delivered so far."""
    require(who, *ROLES)
    st = state(request)
    from computenet.control import gridops

    out: dict[str, Any] = gridops.report(st.repo, _planner(st), event_id)
    return out
