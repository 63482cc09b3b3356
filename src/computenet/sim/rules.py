"""An independent check of the data rules on what the simulator actually executed.

The engine enforces the rules when it plans; this module re-derives every verdict from the
placement, the dataset and the network alone, so a bug in the engine shows up as a
violation in the metrics instead of being trusted. The rules are those of
``CHINA_FACTS.md`` §4 (Data Security Law Art. 21, PIPL Art. 40, the 2024 Provisions on
Cross-Border Data Flows):

* core data is processed only at its home (designated) site and is never copied;
* important data stays in its home jurisdiction;
* personal information stays in its home jurisdiction unless the export was cleared, or it
  covers fewer than 100,000 people and none of it is sensitive (the exemption);
* a site holding important or core data needs MLPS level 3 or more (GB/T 22239-2019).
"""

from __future__ import annotations

from computenet.model import Classification, Dataset, Network

PI_EXEMPT_BELOW = 100_000
MIN_LEVEL = {Classification.IMPORTANT: 3, Classification.CORE: 3}


def rule_breach(
    network: Network, dataset: Dataset, site_id: str, *, copy: bool = False
) -> str | None:
    """Why processing (or, with ``copy``, storing a copy of) ``dataset`` at ``site_id``
    breaks a rule, or ``None`` when it is allowed."""
    if site_id == dataset.home_site:
        return None
    cls = dataset.classification
    if cls is Classification.CORE:
        verb = "copied" if copy else "processed"
        return f"core data {dataset.id} {verb} away from its home site {dataset.home_site}"
    site = network.site(site_id)
    home = network.site(dataset.home_site)
    crosses = site.jurisdiction != home.jurisdiction
    if cls is Classification.IMPORTANT and crosses:
        return (
            f"important data {dataset.id} left {home.jurisdiction} "
            f"for {site_id} ({site.jurisdiction})"
        )
    pi_gated = dataset.sensitive or dataset.individuals >= PI_EXEMPT_BELOW
    if cls is Classification.PERSONAL and crosses and not dataset.export_cleared and pi_gated:
        return (
            f"personal information {dataset.id} ({dataset.individuals} people) exported "
            f"to {site_id} without clearance"
        )
    need = MIN_LEVEL.get(cls)
    if need is not None and site.security_level < need:
        return f"{cls} data {dataset.id} at {site_id}, MLPS level {site.security_level} < {need}"
    return None
