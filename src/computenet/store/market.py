"""The market's persistence: offers, orders with their quotes, pool certificates, and the
money that moves when an order is committed, cancelled or settled.

Every change is one database transaction with its audit row and its ledger postings
(``LedgerStore.post_in``), so an order is never committed without its charge, nor a
refund posted twice (ledger keys ``order:<id>:charge``, ``order:<id>:cancel``,
``order:<id>:shortfall``, ``order:<id>:late``).

Rules (stated to tenants and providers in the README):

* a quote is valid for ``QUOTE_TTL_S`` (10 minutes); later it expires and commits nothing;
* committing charges the quoted price at once (the tenant pays, the provider is credited
  less the platform fee) and places the order's job at the quoted site and start, so the
  live loop runs it there and other work is planned around it;
* a tenant may cancel before the start: a full refund at least ``FREE_CANCEL_S`` (1 hour)
  before the start, half the charge later; after the start, nothing;
* at settlement (the job has ended): units not delivered at the reserved site through no
  fault of the tenant (the site failed the job, it ran elsewhere after a failover, or was
  cut short) are refunded in proportion; a start more than ``LATE_GRACE_S`` (15 minutes)
  after the quoted start refunds ``LATE_REFUND_BP`` (10 %) of the charge. A job that exits
  non-zero on its own is the tenant's: no refund.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from computenet.control.lifecycle import TERMINAL, check_transition
from computenet.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from computenet.market.certificate import Certificate
from computenet.market.ledger import Posting, Transaction, charge, fee_fen
from computenet.market.orders import Offer, Order, Quote, Sold
from computenet.model import HOUR_S
from computenet.store.ledger import LedgerStore
from computenet.store.models import (
    AuditRow,
    JobRow,
    MarketOfferRow,
    MarketOrderRow,
    PoolCertificateRow,
)
from computenet.store.repository import Principal, now_s

QUOTE_TTL_S = 600
FREE_CANCEL_S = HOUR_S
LATE_GRACE_S = 900
LATE_REFUND_BP = 1000
DEFAULT_FEE_BP = 500  # the platform's fee: 5 % of each charge


def _audit(s: Session, actor: str, action: str, object_id: str, **detail: Any) -> None:
    s.add(AuditRow(at_s=now_s(), actor=actor, action=action, object_id=object_id, detail=detail))


def offer_of(row: MarketOfferRow) -> Offer:
    return Offer(
        id=row.id,
        provider_id=row.provider_id,
        site_id=row.site_id,
        accelerator=row.accelerator,
        accelerators=row.accelerators,
        start_s=row.start_s,
        end_s=row.end_s,
        price_fen_per_unit=row.price_fen_per_unit,
        kind=row.kind,  # type: ignore[arg-type]
    )


def offer_dict(row: MarketOfferRow) -> dict[str, Any]:
    return asdict(offer_of(row)) | {"created_s": row.created_s, "withdrawn_s": row.withdrawn_s}


def order_dict(row: MarketOrderRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "state": row.state,
        "order": row.order,
        "quote": row.quote,
        "job_id": row.job_id,
        "expires_s": row.expires_s,
        "created_s": row.created_s,
        "updated_s": row.updated_s,
        "settlement": row.settlement,
    }


def quote_dict(q: Quote) -> dict[str, Any]:
    out = asdict(q)
    out["throughput"] = asdict(q.throughput) | {"units_per_hour": q.throughput.units_per_hour}
    out["total_fen"] = q.total_fen
    out["alternatives"] = list(q.alternatives)
    return out


class MarketStore:
    def __init__(self, engine: Engine, ledger: LedgerStore | None = None) -> None:
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.writes = sessionmaker(
            engine.execution_options(sqlite_write=True), expire_on_commit=False
        )
        self.ledger = ledger or LedgerStore(engine)

    # -- offers and certificates --------------------------------------------------------

    def add_offer(self, actor: str, offer: Offer) -> dict[str, Any]:
        row = MarketOfferRow(**asdict(offer), created_s=now_s(), withdrawn_s=None)
        with self.writes.begin() as s:
            s.add(row)
            _audit(
                s,
                actor,
                "offer.create",
                row.id,
                site_id=offer.site_id,
                price=offer.price_fen_per_unit,
            )
        return offer_dict(row)

    def withdraw_offer(self, who: Principal, offer_id: str) -> dict[str, Any]:
        """Withdraw an offer: nothing more is sold from it; what is sold is honoured."""
        with self.writes.begin() as s:
            row = s.get(MarketOfferRow, offer_id)
            if row is None or (who.role != "admin" and row.provider_id != who.tenant_id):
                raise NotFoundError(f"no offer {offer_id!r}")
            if row.withdrawn_s is None:
                row.withdrawn_s = now_s()
                _audit(s, who.tenant_id, "offer.withdraw", offer_id)
            return offer_dict(row)

    def offers(self, now: int, provider_id: str | None = None) -> list[Offer]:
        """Offers open now or later and not withdrawn: the public price catalog."""
        q = select(MarketOfferRow).where(
            MarketOfferRow.end_s > now, MarketOfferRow.withdrawn_s.is_(None)
        )
        if provider_id is not None:
            q = q.where(MarketOfferRow.provider_id == provider_id)
        with self.sessions() as s:
            return [
                offer_of(r)
                for r in s.scalars(q.order_by(MarketOfferRow.site_id, MarketOfferRow.id))
            ]

    def offer_rows(self, offer_ids: Sequence[str]) -> dict[str, MarketOfferRow]:
        with self.sessions() as s:
            q = select(MarketOfferRow).where(MarketOfferRow.id.in_(list(offer_ids)))
            return {r.id: r for r in s.scalars(q)}

    def put_certificate(
        self, actor: str, provider_id: str, site_id: str, accelerator: str, cert: Certificate
    ) -> dict[str, Any]:
        with self.writes.begin() as s:
            row = s.get(PoolCertificateRow, (site_id, accelerator))
            if row is None:
                row = PoolCertificateRow(site_id=site_id, accelerator=accelerator)
                s.add(row)
            row.provider_id = provider_id
            row.certificate_id = cert.id
            row.body = dict(cert.body)
            row.submitted_s = now_s()
            _audit(
                s,
                actor,
                "certificate.submit",
                site_id,
                accelerator=accelerator,
                certificate=cert.id,
            )
        return {"site_id": site_id, "accelerator": accelerator, "certificate_id": cert.id}

    def certificates(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self.sessions() as s:
            return {
                (r.site_id, r.accelerator): r.body for r in s.scalars(select(PoolCertificateRow))
            }

    # -- orders -------------------------------------------------------------------------

    def sold(self, now: int) -> list[Sold]:
        """Capacity committed orders hold (their offers' seats until their quoted end)."""
        q = select(MarketOrderRow).where(MarketOrderRow.state == "committed")
        with self.sessions() as s:
            return [
                Sold(str(r.offer_id), r.quote["accelerators"], r.quote["start_s"], r.quote["end_s"])
                for r in s.scalars(q)
                if r.quote and r.quote["end_s"] > now
            ]

    def add_quote(
        self, tenant_id: str, order: Order, result: Quote | None, why: str | None
    ) -> dict[str, Any]:
        t = now_s()
        row = MarketOrderRow(
            id=order.id,
            tenant_id=tenant_id,
            state="quoted" if result is not None else "unmatched",
            order=asdict(order),
            quote=quote_dict(result) if result is not None else None,
            offer_id=result.offer_id if result is not None else None,
            provider_id=result.provider_id if result is not None else None,
            job_id=None,
            expires_s=t + QUOTE_TTL_S,
            created_s=t,
            updated_s=t,
            settlement=None if result is not None else {"reason": why},
        )
        with self.writes.begin() as s:
            s.add(row)
            _audit(s, tenant_id, "order.quote", row.id, state=row.state)
        return order_dict(row)

    def _mine(self, s: Session, who: Principal, order_id: str) -> MarketOrderRow:
        row = s.get(MarketOrderRow, order_id)
        if row is None or (who.role != "admin" and row.tenant_id != who.tenant_id):
            raise NotFoundError(f"no order {order_id!r}")
        return row

    def get_order(self, who: Principal, order_id: str) -> dict[str, Any]:
        with self.sessions() as s:
            row = s.get(MarketOrderRow, order_id)
            visible = row is not None and (
                who.role == "admin"
                or row.tenant_id == who.tenant_id
                or (who.role == "provider" and row.provider_id == who.tenant_id)
            )
            if row is None or not visible:
                raise NotFoundError(f"no order {order_id!r}")
            return order_dict(row)

    def list_orders(self, who: Principal, limit: int = 100) -> list[dict[str, Any]]:
        q = select(MarketOrderRow)
        if who.role == "provider":
            q = q.where(MarketOrderRow.provider_id == who.tenant_id)
        elif who.role != "admin":
            q = q.where(MarketOrderRow.tenant_id == who.tenant_id)
        with self.sessions() as s:
            rows = s.scalars(
                q.order_by(MarketOrderRow.created_s.desc(), MarketOrderRow.id).limit(limit)
            )
            return [order_dict(r) for r in rows]

    def commit(self, who: Principal, order_id: str, fee_bp: int = DEFAULT_FEE_BP) -> dict[str, Any]:
        """Accept a quote: charge it, place its job at the quoted site and start."""
        t = now_s()
        with self.writes.begin() as s:
            row = self._mine(s, who, order_id)
            if row.state == "committed":
                return order_dict(row)  # a retried accept
            if row.state != "quoted" or row.quote is None:
                raise ConflictError(
                    f"order {order_id} is {row.state}; only a quoted order is accepted"
                )
            if t > row.expires_s:
                row.state, row.updated_s = "expired", t
                _audit(s, who.tenant_id, "order.expire", row.id)
                raise ConflictError(f"the quote of order {order_id} expired; ask for a new one")
            self._check_still_free(s, row)
            q, o = row.quote, row.order
            job = self._placed_job(row, t)
            s.add(job)
            row.job_id, row.state, row.updated_s = job.id, "committed", t
            amount = int(q["price_fen"])
            tx = charge(
                f"order:{row.id}:charge",
                t,
                row.tenant_id,
                str(row.provider_id),
                amount,
                fee_fen(amount, fee_bp),
                memo=f"order {row.id}: {o['units']:g} units at {q['site_id']}",
                refs={"order": row.id, "job": job.id, "offer": str(row.offer_id)},
            )
            self.ledger.post_in(s, [tx], who.tenant_id)
            _audit(s, who.tenant_id, "order.commit", row.id, job_id=job.id, charge_fen=amount)
            _audit(s, who.tenant_id, "job.submit", job.id, name=job.name, order=row.id)
            return order_dict(row)

    def _check_still_free(self, s: Session, row: MarketOrderRow) -> None:
        """What was sold from the offer since the quote must leave room for it."""
        offer = s.get(MarketOfferRow, row.offer_id)
        if offer is None or offer.withdrawn_s is not None:
            raise ConflictError("the offer was withdrawn since the quote; ask for a new one")
        q = row.quote or {}
        taken = [
            r.quote
            for r in s.scalars(
                select(MarketOrderRow).where(
                    MarketOrderRow.offer_id == row.offer_id, MarketOrderRow.state == "committed"
                )
            )
            if r.quote
        ]
        for t in {q["start_s"], *(x["start_s"] for x in taken)}:
            if not q["start_s"] <= t < q["end_s"]:
                continue
            used = sum(x["accelerators"] for x in taken if x["start_s"] <= t < x["end_s"])
            if used + q["accelerators"] > offer.accelerators:
                raise ConflictError("the offer was sold out since the quote; ask for a new one")

    @staticmethod
    def _placed_job(row: MarketOrderRow, t: int) -> JobRow:
        q, o = row.quote or {}, row.order
        run_h = (q["end_s"] - q["start_s"]) / HOUR_S
        return JobRow(
            id="j_" + uuid.uuid4().hex[:16],
            tenant_id=row.tenant_id,
            name=f"order {row.id}",
            state="placed",
            accelerators=q["accelerators"],
            duration_h=run_h,
            deadline_s=o["end_s"],
            accelerator_types=[q["accelerator"]],
            datasets=list(o.get("datasets") or []),
            command=None,
            priority=0,
            idempotency_key=f"order:{row.id}",
            created_s=t,
            updated_s=t,
            site_id=q["site_id"],
            accelerator=q["accelerator"],
            start_s=q["start_s"],
            end_s=q["end_s"],
            explanation={
                "policy": "market",
                "reason": f"market order {row.id}: reserved at {q['site_id']} by offer "
                f"{q['offer_id']} ({q['reason']})",
                "alternatives": [
                    {"site_id": "", "start_s": None, "objective_cny": None, "reason": a}
                    for a in q["alternatives"]
                ],
                "quote": q,
            },
            checkpointable=False,
            work_done_h=0.0,
            checkpoints=0,
        )

    def cancel(self, who: Principal, order_id: str) -> dict[str, Any]:
        t = now_s()
        with self.writes.begin() as s:
            row = self._mine(s, who, order_id)
            if row.state in ("quoted", "unmatched"):
                row.state, row.updated_s = "cancelled", t
                _audit(s, who.tenant_id, "order.cancel", row.id)
                return order_dict(row)
            if row.state != "committed" or row.quote is None:
                raise ConflictError(f"order {order_id} is {row.state}: nothing to cancel")
            start = int(row.quote["start_s"])
            if t >= start:
                raise ConflictError(
                    f"order {order_id} started at {start}: it can no longer be cancelled"
                )
            share_bp = 10_000 if start - t >= FREE_CANCEL_S else 5_000
            self._refund(s, row, "cancel", share_bp, t, "cancelled by the tenant before the start")
            job = s.get(JobRow, row.job_id)
            if job is not None and job.state not in TERMINAL:
                check_transition(job.id, job.state, "cancelled")
                job.state, job.updated_s = "cancelled", t
            row.state, row.updated_s = "cancelled", t
            row.settlement = {"refund_share": share_bp / 10_000, "at_s": t}
            _audit(s, who.tenant_id, "order.cancel", row.id, refund_share=share_bp / 10_000)
            return order_dict(row)

    def _refund(
        self, s: Session, row: MarketOrderRow, why: str, share_bp: int, t: int, memo: str
    ) -> int:
        """Reverse ``share_bp`` of the order's charge, each posting in proportion."""
        original = next(
            (tx for tx in self.ledger.transactions_in(s, [f"order:{row.id}:charge"])), None
        )
        if original is None or share_bp <= 0:
            return 0
        amounts = [(p.account, -(p.amount_fen * share_bp) // 10_000) for p in original.postings]
        fix = -sum(a for _, a in amounts)  # rounding goes to the tenant's posting
        postings = tuple(
            Posting(acc, amt + (fix if acc.startswith("tenant:") else 0)) for acc, amt in amounts
        )
        postings = tuple(p for p in postings if p.amount_fen)
        if len(postings) < 2:
            return 0
        refs = {"order": row.id, "refunds": original.key}
        tx = Transaction(f"order:{row.id}:{why}", t, "refund", postings, memo, refs)
        self.ledger.post_in(s, [tx], "system")
        return sum(p.amount_fen for p in postings if p.account.startswith("tenant:"))

    def expire(self, now: int) -> int:
        with self.writes.begin() as s:
            rows = list(
                s.scalars(
                    select(MarketOrderRow).where(
                        MarketOrderRow.state == "quoted", MarketOrderRow.expires_s < now
                    )
                )
            )
            for r in rows:
                r.state, r.updated_s = "expired", now
                _audit(s, "system", "order.expire", r.id)
        return len(rows)

    def settle(self, now: int) -> list[dict[str, Any]]:
        """Settle every committed order whose job has ended (idempotent)."""
        out = []
        with self.writes.begin() as s:
            rows = list(
                s.scalars(select(MarketOrderRow).where(MarketOrderRow.state == "committed"))
            )
            for row in rows:
                job = s.get(JobRow, row.job_id)
                if job is None or job.state not in TERMINAL:
                    continue
                out.append(self._settle_one(s, row, job, now))
        return out

    def _settle_one(self, s: Session, row: MarketOrderRow, job: JobRow, now: int) -> dict[str, Any]:
        q = row.quote or {}
        planned_s = max(1, int(q["end_s"]) - int(q["start_s"]))
        at_site = job.executor == q["site_id"] or job.site_id == q["site_id"]
        ran_s = 0
        if job.run_started_s is not None and at_site:
            ran_s = max(0, min(planned_s, job.updated_s - job.run_started_s))
        # The tenant's own: its process exited non-zero at the reserved site, or it cancelled.
        own_exit = job.exit_code is not None and job.exit_code not in (0, -9)
        tenant_fault = job.state == "cancelled" or (job.state == "failed" and at_site and own_exit)
        delivered = 1.0 if job.state == "succeeded" and at_site else ran_s / planned_s
        refunded = 0
        notes = []
        if not tenant_fault and delivered < 0.999:
            share = round((1 - delivered) * 10_000)
            refunded += self._refund(
                s, row, "shortfall", share, now, f"{1 - delivered:.0%} of the units not delivered"
            )
            notes.append(f"{1 - delivered:.1%} not delivered at {q['site_id']}: refunded")
        late_s = (job.run_started_s or 0) - int(q["start_s"]) if job.run_started_s else 0
        if at_site and late_s > LATE_GRACE_S:
            refunded += self._refund(
                s, row, "late", LATE_REFUND_BP, now, f"started {late_s} s late"
            )
            notes.append(f"started {late_s // 60} min late: {LATE_REFUND_BP / 100:g} % refunded")
        row.state, row.updated_s = "settled", now
        row.settlement = {
            "at_s": now,
            "job_state": job.state,
            "delivered_share": round(delivered, 4),
            "started_late_s": max(0, late_s),
            "refunded_fen": -refunded,
            "notes": notes or ["delivered as quoted"],
        }
        _audit(s, "system", "order.settle", row.id, **row.settlement)
        return order_dict(row)


def check_owner(who: Principal, owned_sites: set[str], site_id: str) -> None:
    """A provider acts only for its own sites (an admin for any)."""
    if who.role == "admin":
        return
    if who.role != "provider":
        raise ForbiddenError("only a provider or an admin may do this")
    if site_id not in owned_sites:
        raise ForbiddenError(
            f"site {site_id!r} is not one of this provider's sites "
            f"({', '.join(sorted(owned_sites)) or 'none bound'})"
        )


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


__all__ = ["InputError", "MarketStore", "check_owner", "new_id"]
