"""Provider scorecards: the "evaluation indicators" of a compute provider, computed only
from records a third party can be given and recompute them from.

* **availability** per site: the share of ``[since_s, now_s)`` the site was up, from the
  audit log's ``site.down`` / ``site.up`` events (the loop writes them from executor
  heartbeats); a site with no event was up throughout;
* **on-time starts** and **completions**: of the provider's settled orders, the share that
  started within the grace (15 minutes) of the quoted start, and the share delivered in
  full (``settlement`` of each order, itself derived from the job's audited states);
* **measured against claimed throughput**: for each pool with a certificate, the measured
  dense BF16 TFLOP/s over the published spec;
* **environment**: PUE, the grid's carbon now, and the effective carbon and green share
  the engine plans with (the mix with the site's applied green supply, ``signals.green``);
* **price**: the open offers' price per compute unit (min, mean).

``inputs`` lists the audit event ids, order ids and ledger keys used, so the figures can be
recomputed from ``GET /v1/audit`` (admin), ``GET /v1/market/orders`` and the ledger export.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from computenet.market.certificate import check as check_certificate
from computenet.market.orders import Offer
from computenet.signals.green import green_share_now

LATE_GRACE_S = 900


def availability(events: Sequence[Mapping[str, Any]], since_s: int, now_s: int) -> float:
    """Share of ``[since_s, now_s)`` a site was up, from its site.down/site.up events."""
    span = max(1, now_s - since_s)
    down_s, down_from = 0, None
    for e in sorted(events, key=lambda e: (e["at_s"], e["id"])):
        t = min(max(e["at_s"], since_s), now_s)
        if e["action"] == "site.down" and down_from is None:
            down_from = t
        elif e["action"] == "site.up" and down_from is not None:
            down_s += t - down_from
            down_from = None
    if down_from is not None:
        down_s += now_s - down_from
    return round(1 - down_s / span, 6)


def scorecard(
    provider_id: str,
    network: Any,
    sites: set[str],
    *,
    audit: Sequence[Mapping[str, Any]],
    orders: Sequence[Mapping[str, Any]],
    offers: Sequence[Offer],
    certificates: Mapping[tuple[str, str], Mapping[str, Any]],
    now_s: int,
    since_s: int,
) -> dict[str, Any]:
    site_events = [e for e in audit if e["action"] in ("site.down", "site.up")]
    per_site = []
    for site_id in sorted(sites):
        site = network.site(site_id)
        events = [e for e in site_events if e["object_id"] == site_id]
        per_site.append(
            {
                "site_id": site_id,
                "availability": availability(events, since_s, now_s),
                "pue": site.pue,
                "grid_carbon_g_per_kwh": _now(site.grid_carbon or site.carbon, now_s),
                "effective_carbon_g_per_kwh": _now(site.carbon, now_s),
                "green_share": round(green_share_now(site, network.accelerators, now_s), 4),
            }
        )
    settled = [o for o in orders if o["state"] == "settled" and o.get("settlement")]
    on_time = [o for o in settled if o["settlement"].get("started_late_s", 0) <= LATE_GRACE_S]
    complete = [o for o in settled if o["settlement"].get("delivered_share", 0) >= 0.999]
    throughput = []
    for (site_id, acc), body in sorted(certificates.items()):
        cert = check_certificate(body)
        spec = network.accelerators[acc].tflops_bf16
        throughput.append(
            {
                "site_id": site_id,
                "accelerator": acc,
                "certificate_id": cert.id,
                "measured_tflops": cert.matmul_tflops,
                "spec_tflops": spec,
                "measured_over_spec": round(cert.matmul_tflops / spec, 4),
            }
        )
    prices = [o.price_fen_per_unit for o in offers if o.end_s > now_s]
    return {
        "provider_id": provider_id,
        "period": {"since_s": since_s, "until_s": now_s},
        "availability": round(statistics.fmean(s["availability"] for s in per_site), 6)
        if per_site
        else None,
        "sites": per_site,
        "orders_settled": len(settled),
        "on_time_start_share": _share(len(on_time), len(settled)),
        "completion_share": _share(len(complete), len(settled)),
        "throughput": throughput,
        "price_fen_per_unit": {
            "min": min(prices) if prices else None,
            "mean": round(statistics.fmean(prices), 2) if prices else None,
            "open_offers": len(prices),
        },
        "inputs": {
            "audit_event_ids": sorted(e["id"] for e in site_events),
            "order_ids": sorted(o["id"] for o in settled),
            "ledger_keys": sorted(f"order:{o['id']}:charge" for o in settled),
            "how": "availability from site.down/site.up audit events over the period; "
            "on-time and completion shares from each settled order's settlement; "
            "throughput from the submitted certificates (their sha256 recomputes)",
        },
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _now(signal: Any, t: int) -> float | None:
    if signal is None:
        return None
    try:
        return round(float(signal.at(t)), 2)
    except (ValueError, KeyError, IndexError):
        return None
