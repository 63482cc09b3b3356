"""/v1/market, /v1/ledger and provider scorecards: the compute market over HTTP.

Providers publish offers and certificates for their own sites only; tenants ask for a
quote (the engine's plan is the match), accept it (charged at once, its job placed at the
quoted site and start) or cancel it; everyone reads the public price catalog; a tenant
reads its own statement, a provider its own payouts, an admin everything.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from computenet.api.deps import principal, require, state
from computenet.api.errors import ERROR_RESPONSES
from computenet.api.schemas import Text
from computenet.errors import ForbiddenError, InputError, NotFoundError
from computenet.market import certificate as certificates
from computenet.market.ledger import statement_rows
from computenet.market.orders import Offer, Order, Quote, check_offer, match
from computenet.market.scorecard import scorecard
from computenet.market.units import UNIT_DEFINITION, UNIT_NAME, pool_throughput
from computenet.store.ledger import LedgerStore
from computenet.store.market import MarketStore, check_owner
from computenet.store.repository import Principal, now_s

router = APIRouter(tags=["market"], responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(principal)]
MAX_S = 2**40


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: Text = Field(max_length=80)
    accelerator: Text = Field(max_length=80)
    accelerators: int = Field(gt=0, le=1_000_000)
    start_s: int = Field(ge=0, lt=MAX_S)
    end_s: int = Field(ge=0, lt=MAX_S)
    price_fen_per_unit: int = Field(gt=0, le=10**9, description=f"fen per {UNIT_NAME}")
    kind: Literal["on_demand", "reserved"] = "on_demand"


class CertificateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: Text = Field(max_length=80)
    accelerator: Text = Field(max_length=80)
    certificate: dict[str, Any] = Field(description="the file `computenet measure` wrote")


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    units: float = Field(gt=0, le=1e9, allow_inf_nan=False, description=f"{UNIT_NAME}s")
    accelerators: int = Field(default=1, gt=0, le=100_000, description="gang size")
    start_s: int = Field(ge=0, lt=MAX_S)
    end_s: int = Field(ge=0, lt=MAX_S)
    max_price_fen_per_unit: int = Field(gt=0, le=10**9)
    carbon_cap_kg: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    datasets: list[Text] = Field(default_factory=list, max_length=100)
    accelerator_types: list[Text] = Field(default_factory=list, max_length=20)


def market(request: Request) -> MarketStore:
    app_state = request.app.state
    if getattr(app_state, "market", None) is None:
        app_state.market = MarketStore(state(request).repo.engine)
    store: MarketStore = app_state.market
    return store


def _network(request: Request) -> Any:
    network = state(request).network
    if network is None:
        raise NotFoundError("this service has no network loaded: there is no market")
    return network


# -- offers and certificates -------------------------------------------------------------


@router.post("/v1/market/offers", status_code=201)
async def post_offer(body: OfferIn, request: Request, who: Who) -> dict[str, Any]:
    """Provider (own sites only) or admin: offer a pool's accelerators over a window at a
    price per compute unit."""
    st = state(request)
    owned = await asyncio.to_thread(st.repo.provider_sites, who.tenant_id)
    check_owner(who, owned, body.site_id)
    provider = who.tenant_id
    offer = check_offer(
        Offer(id="of_" + uuid.uuid4().hex[:16], provider_id=provider, **body.model_dump()),
        _network(request),
    )
    return await asyncio.to_thread(market(request).add_offer, who.tenant_id, offer)


@router.delete("/v1/market/offers/{offer_id}")
async def withdraw_offer(offer_id: str, request: Request, who: Who) -> dict[str, Any]:
    """The offer's provider or an admin: sell nothing more from it (sold capacity stays)."""
    require(who, "provider", "admin")
    return await asyncio.to_thread(market(request).withdraw_offer, who, offer_id)


@router.get("/v1/market/offers")
async def price_catalog(request: Request, who: Who) -> dict[str, Any]:
    """The public price catalog: open offers with each pool's throughput (measured where a
    certificate was submitted, else the spec, labelled) and its price per accelerator-hour."""
    network = _network(request)
    store = market(request)
    offers, certs = await asyncio.gather(
        asyncio.to_thread(store.offers, now_s()), asyncio.to_thread(store.certificates)
    )
    rows = []
    for o in offers:
        t = _throughput(network, certs, o.site_id, o.accelerator)
        rows.append(
            {
                **o.__dict__,
                "throughput": {"tflops_bf16": t.tflops_bf16, "basis": t.basis, "source": t.source},
                "units_per_accelerator_hour": round(t.units_per_hour, 4),
                "price_fen_per_accelerator_hour": round(o.price_fen_per_unit * t.units_per_hour, 2),
            }
        )
    return {"unit": UNIT_NAME, "unit_definition": UNIT_DEFINITION, "offers": rows}


def _throughput(network: Any, certs: dict[tuple[str, str], Any], site: str, acc: str) -> Any:
    body = certs.get((site, acc))
    measured = certificates.check(body).throughput() if body is not None else None
    return pool_throughput(network.accelerators[acc], measured)


@router.post("/v1/market/certificates", status_code=201)
async def post_certificate(body: CertificateIn, request: Request, who: Who) -> dict[str, Any]:
    """Provider (own sites only) or admin: submit a measurement certificate for a pool; the
    pool then sells at its measured throughput."""
    st = state(request)
    owned = await asyncio.to_thread(st.repo.provider_sites, who.tenant_id)
    check_owner(who, owned, body.site_id)
    network = _network(request)
    try:
        site = network.site(body.site_id)
    except KeyError:
        raise InputError(f"no site {body.site_id!r}", where="site_id") from None
    if site.capacity(body.accelerator) <= 0:
        raise InputError(
            f"site {body.site_id!r} has no {body.accelerator} pool", where="accelerator"
        )
    cert = certificates.check(body.certificate, source="certificate")
    cert.throughput()  # only a BF16/FP16 accelerator measurement converts into units
    if cert.accelerator != body.accelerator:
        raise InputError(
            f"the certificate measured {cert.device_name!r} "
            f"({cert.accelerator or 'unknown type'}), not {body.accelerator}",
            where="certificate.accelerator",
            fix="submit the certificate measured on this pool's accelerator type",
        )
    return await asyncio.to_thread(
        market(request).put_certificate,
        who.tenant_id,
        who.tenant_id,
        body.site_id,
        body.accelerator,
        cert,
    )


# -- orders --------------------------------------------------------------------------------


@router.post("/v1/market/orders", status_code=201)
async def order_quote(body: OrderIn, request: Request, who: Who) -> dict[str, Any]:
    """Tenant: ask for a quote. The engine plans the order on the offers that qualify; the
    answer is ``quoted`` (valid 10 minutes, accept with POST .../accept) or ``unmatched``
    with the reason. Nothing is charged until the quote is accepted."""
    require(who, "tenant")
    st = state(request)
    network = _network(request)
    if body.datasets:
        missing = await asyncio.to_thread(st.repo.missing_datasets, who, body.datasets)
        if missing:
            raise InputError(
                f"unknown dataset {missing[0]!r}", where="datasets", fix="POST /v1/datasets first"
            )
    unknown = sorted(set(body.accelerator_types) - set(network.accelerators))
    if unknown:
        raise InputError(f"unknown accelerator type {unknown[0]!r}", where="accelerator_types")
    order = Order(
        id="or_" + uuid.uuid4().hex[:16],
        tenant_id=who.tenant_id,
        units=body.units,
        accelerators=body.accelerators,
        start_s=body.start_s,
        end_s=body.end_s,
        max_price_fen_per_unit=body.max_price_fen_per_unit,
        carbon_cap_kg=body.carbon_cap_kg,
        datasets=tuple(body.datasets),
        accelerator_types=tuple(body.accelerator_types),
    )
    return await asyncio.to_thread(_quote, request, order)


def _quote(request: Request, order: Order) -> dict[str, Any]:
    from computenet.control.planning import engine_datasets

    st, store = state(request), market(request)
    now = now_s()
    certs = store.certificates()
    throughputs = {k: certificates.check(body).throughput() for k, body in certs.items()}
    datasets = engine_datasets(st.repo, list(order.datasets))
    result = match(
        order,
        store.offers(now),
        st.network,
        now_s=now,
        datasets=datasets,
        sold=store.sold(now),
        throughputs=throughputs,
        carbon_price_cny_per_t=st.settings.carbon_price_cny_per_t,
    )
    if isinstance(result, Quote):
        return store.add_quote(order.tenant_id, order, result, None)
    return store.add_quote(order.tenant_id, order, None, f"{result.constraint}: {result.reason}")


@router.post("/v1/market/orders/{order_id}/accept")
async def accept(order_id: str, request: Request, who: Who) -> dict[str, Any]:
    """Tenant: accept a quote. Charged at once; the order's job is placed at the quoted
    site and start, and the live loop runs it there. Repeating it answers the same order."""
    return await asyncio.to_thread(market(request).commit, who, order_id)


@router.post("/v1/market/orders/{order_id}/cancel")
async def cancel(order_id: str, request: Request, who: Who) -> dict[str, Any]:
    """Tenant: cancel before the start. Full refund at least 1 hour before, half later."""
    return await asyncio.to_thread(market(request).cancel, who, order_id)


@router.get("/v1/market/orders")
async def list_orders(request: Request, who: Who) -> list[dict[str, Any]]:
    """A tenant's own orders, a provider's orders on its offers, an admin's all."""
    return await asyncio.to_thread(market(request).list_orders, who)


@router.get("/v1/market/orders/{order_id}")
async def get_order(order_id: str, request: Request, who: Who) -> dict[str, Any]:
    return await asyncio.to_thread(market(request).get_order, who, order_id)


# -- the ledger ----------------------------------------------------------------------------


def _account_for(who: Principal, account: str | None) -> str:
    own = f"{who.role}:{who.tenant_id}" if who.role in ("tenant", "provider") else None
    if account is None:
        return own or "platform:fees"  # an admin's default: the platform's fee income
    if who.role != "admin" and account != own:
        raise ForbiddenError(f"this token may read only its own account ({own})")
    return account


@router.get("/v1/ledger/balances")
async def balances(request: Request, who: Who) -> dict[str, Any]:
    """Balances in fen: an admin's of every account with the trial balance (always 0); a
    tenant's or provider's of its own account."""
    ledger = LedgerStore(state(request).repo.engine)
    if who.role == "admin":
        all_balances = await asyncio.to_thread(ledger.balances)
        return {"balances": all_balances, "trial_balance": sum(all_balances.values())}
    own = _account_for(who, None)
    mine = await asyncio.to_thread(ledger.balances, [own])
    return {"balances": {own: mine.get(own, 0)}}


@router.get(
    "/v1/ledger/statement",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def statement(
    request: Request,
    who: Who,
    account: Annotated[str | None, Query(max_length=60)] = None,
    month: Annotated[
        str | None,
        Query(pattern=r"^(19[7-9]\d|2\d{3})-(0[1-9]|1[0-2])$", description="YYYY-MM, UTC"),
    ] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """A tenant's monthly statement or a provider's payouts: every posting to the account
    with a running balance (CSV or JSON)."""
    acct = _account_for(who, account)
    since = until = None
    if month is not None:
        first = dt.datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=dt.UTC)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        since, until = int(first.timestamp()), int(nxt.timestamp())
    ledger = LedgerStore(state(request).repo.engine)
    txs = await asyncio.to_thread(ledger.transactions, account=acct, since_s=since, until_s=until)
    rows = statement_rows(txs, acct)
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, ["at_s", "key", "kind", "memo", "amount_fen", "balance_fen"])
        writer.writeheader()
        writer.writerows(rows)
        return PlainTextResponse(out.getvalue(), media_type="text/csv")
    return {
        "account": acct,
        "month": month,
        "rows": rows,
        "closing_fen": rows[-1]["balance_fen"] if rows else 0,
    }


# -- scorecards ----------------------------------------------------------------------------


@router.get("/v1/providers/{provider_id}/scorecard")
async def provider_scorecard(
    provider_id: str,
    request: Request,
    who: Who,
    days: Annotated[int, Query(ge=1, le=3660, description="the period: the last N days")] = 30,
) -> dict[str, Any]:
    """The provider's evaluation indicators over the last ``days`` days, with the inputs a
    third party needs to recompute them (``inputs``): audit event ids, order ids and ledger
    keys."""
    st = state(request)
    network = _network(request)
    store = market(request)
    sites = await asyncio.to_thread(st.repo.provider_sites, provider_id)
    if not sites and who.role != "admin":
        raise NotFoundError(f"no provider {provider_id!r}")
    return await asyncio.to_thread(_scorecard, st, store, network, provider_id, sites, days)


def _scorecard(
    st: Any, store: MarketStore, network: Any, provider_id: str, sites: set[str], days: int
) -> dict[str, Any]:
    now = now_s()
    admin = Principal("system", "admin")
    audit = [
        e
        for site in sorted(sites)
        for e in st.repo.audit(admin, object_id=site, limit=10_000, offset=0)
    ]
    orders = [o for o in store.list_orders(Principal(provider_id, "provider"), limit=100_000)]
    return scorecard(
        provider_id,
        network,
        sites,
        audit=audit,
        orders=orders,
        offers=store.offers(0, provider_id),
        certificates={k: v for k, v in store.certificates().items() if k[0] in sites},
        now_s=now,
        since_s=now - days * 86400,
    )
