"""/v1/sites: the network's sites, their live signals, and feeds posted by operators."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from computenet.api.deps import principal, require, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import SiteOut, SiteSignalsIn
from computenet.control import feeds
from computenet.control.sites import capabilities_dict
from computenet.errors import ForbiddenError, InputError, NotFoundError
from computenet.store.repository import Principal, now_s

router = APIRouter(prefix="/v1/sites", tags=["sites"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]


def _now_value(signal: Any, t: int) -> float | None:
    try:
        return float(signal.at(t))
    except (ValueError, KeyError, IndexError):  # a signal that does not cover now
        return None


def _sites(request: Request) -> list[dict[str, Any]]:
    st = state(request)
    if st.network is None:
        return []
    posted = st.repo.site_feeds()
    network, forecasts = feeds.apply(st.network, posted)
    health = _health(st)
    t = now_s()
    out = []
    for site in network.sites:
        counts: dict[str, int] = {}
        for pool in site.pools:
            counts[pool.accelerator] = counts.get(pool.accelerator, 0) + pool.count
        fc = forecasts.get(site.id)
        feed = posted.get(site.id)
        out.append(
            {
                "id": site.id,
                "name": site.name,
                "hub": site.hub,
                "province": site.province,
                "executor": st.executors[site.id].kind,
                "capabilities": capabilities_dict(st.executors[site.id]),
                "health": health.get(site.id),
                "accelerators": counts,
                "price_cny_per_kwh_now": _now_value(fc.price if fc else site.price, t),
                "carbon_g_per_kwh_now": _now_value(fc.carbon if fc else site.carbon, t),
                "feed": None if feed is None else {k: v for k, v in feed.items() if k != "site_id"},
                "supply": _supply(
                    network,
                    site,
                    fc.price if fc else site.price,
                    fc.carbon if fc else site.carbon,
                    t,
                ),
            }
        )
    return out


def _supply(network: Any, site: Any, price: Any, carbon: Any, t: int) -> dict[str, Any]:
    """Grid and effective figures now, side by side (``computenet.signals.green``)."""
    from computenet.signals.green import grid_of, supply_record
    from computenet.signals.modelled import describe_model

    rec = supply_record(site, network.accelerators, t)
    return {
        "grid_carbon_g_per_kwh_now": _now_value(grid_of(carbon), t),
        "effective_carbon_g_per_kwh_now": _now_value(carbon, t),
        "grid_price_cny_per_kwh_now": _now_value(grid_of(price), t),
        "effective_price_cny_per_kwh_now": _now_value(price, t),
        "green_share_now": rec["green_share_applied"],
        "carbon_model": describe_model(site) or "annual",
        "green_supply": rec["green_supply"],
    }


def _health(st: Any) -> dict[str, dict[str, Any]]:
    """Each site's executor health: live from the loop when this process runs it, else as
    the loop last recorded it."""
    if st.loop is not None:
        return {h["site_id"]: h for h in st.loop.health.snapshot()}
    return {
        site_id: dict(h, site_id=site_id, reachable=h["up"])
        for site_id, h in st.repo.site_health().items()
    }


@router.get("", response_model=list[SiteOut])
def list_sites(request: Request, who: Who) -> list[dict[str, Any]]:
    """Sites of the loaded network with capacity and current price and carbon, feeds
    applied, and each site's executor: its kind, what it can do and its health. Sites the
    network file calls ``simulated`` run on the service's default executor (``serve
    --executor``, itself ``simulated`` unless the operator enables ``local``)."""
    return _sites(request)


@router.get("/{site_id}", response_model=SiteOut)
def get_site(site_id: str, request: Request, who: Who) -> dict[str, Any]:
    for site in _sites(request):
        if site["id"] == site_id:
            return site
    raise NotFoundError(f"no site {site_id!r}")


@router.put("/{site_id}/signals", response_model=SiteOut)
async def put_signals(
    site_id: str, body: SiteSignalsIn, request: Request, who: Who
) -> dict[str, Any]:
    """Admin, or the provider that owns the site: post the site's capacity and its price
    and carbon series. The live loop plans with them from its next round; every post is
    audited."""
    require(who, "admin", "provider")
    st = state(request)
    if st.network is None or site_id not in {s.id for s in st.network.sites}:
        raise NotFoundError(f"no site {site_id!r}")
    if who.role == "provider":
        owned = await asyncio.to_thread(st.repo.provider_sites, who.tenant_id)
        if site_id not in owned:
            raise ForbiddenError(
                f"site {site_id!r} is not one of this provider's sites "
                f"({', '.join(sorted(owned)) or 'none bound'}); an admin binds sites with "
                "PUT /v1/tenants/{id}/sites"
            )
    if body.capacity:
        unknown = sorted(set(body.capacity) - set(st.network.accelerators))
        if unknown:
            raise InputError(
                f"unknown accelerator type {unknown[0]!r}",
                where="capacity",
                fix=f"use one of: {', '.join(sorted(st.network.accelerators))}",
            )
    if body.carbon_g_per_kwh is not None:
        # The schema bounds every value; carbon intensity is, in addition, never negative.
        for k, value in enumerate(body.carbon_g_per_kwh.values):
            if value < 0:
                raise InputError(
                    f"carbon {value:g} gCO2/kWh is below 0",
                    where=f"carbon_g_per_kwh.values[{k}]",
                    fix="post the grid's carbon intensity, 0 or more gCO2/kWh",
                )
    dumped = body.model_dump()
    fields = {name: dumped[name] for name in body.model_fields_set}
    await asyncio.to_thread(st.repo.put_site_feed, who.tenant_id, site_id, **fields)
    return await asyncio.to_thread(get_site, site_id, request, who)
