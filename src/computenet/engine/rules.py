"""Where each class of data may be processed or copied: a table, not a chain of ifs.

The rules follow ``CHINA_FACTS.md`` §4:

* Data Security Law, Art. 21 — core, important and general data; core data is under the
  strictest management, so it never leaves its designated (home) site;
* important data stays in its home jurisdiction (the mainland) and only at sites whose
  MLPS 2.0 level (GB/T 22239-2019) is at least 3;
* PIPL Art. 40 and the 2024 Provisions on Cross-Border Data Flows — personal information
  stays in its home jurisdiction unless its export was cleared (CAC assessment, standard
  contract or certification) or it is exempt: fewer than 100,000 people and nothing
  sensitive;
* general data may move anywhere inside its home jurisdiction (moving between provinces or
  hubs needs no national approval, scheduler rule 4); this is stricter than the law, which
  lets general data leave, as the issue asks;
* public data may go anywhere.

Data is always allowed at its own home site. The simulator re-checks executed
placements with its own independent checker (``computenet.sim.rules``); this table is never
looser than that checker.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from computenet.model import Classification, Dataset, Site

PI_EXEMPT_BELOW = 100_000
"""2024 Provisions: personal information of fewer than this many people (cumulative since
1 January, none of it sensitive) may leave without assessment, contract or certification."""


class Scope(enum.StrEnum):
    """How far a dataset may travel from its home site."""

    HOME_SITE = "home site"
    HOME_JURISDICTION = "home jurisdiction"
    ANYWHERE = "anywhere"


@dataclass(frozen=True)
class DataRule:
    """The rule for one data class. ``min_security_level`` is the MLPS level a site other
    than the home site needs; ``exportable_when_cleared`` lets a cleared or exempt dataset
    of this class go ``ANYWHERE``."""

    classification: Classification
    scope: Scope
    min_security_level: int
    exportable_when_cleared: bool
    source: str


RULES: Mapping[Classification, DataRule] = MappingProxyType(
    {
        r.classification: r
        for r in (
            DataRule(
                Classification.CORE,
                Scope.HOME_SITE,
                3,
                False,
                "Data Security Law Art. 21; CHINA_FACTS.md §4 scheduler rule 1",
            ),
            DataRule(
                Classification.IMPORTANT,
                Scope.HOME_JURISDICTION,
                3,
                False,
                "Data Security Law Art. 21, MLPS 2.0 (GB/T 22239-2019); CHINA_FACTS.md §4 rule 1",
            ),
            DataRule(
                Classification.PERSONAL,
                Scope.HOME_JURISDICTION,
                1,
                True,
                "PIPL Art. 40, 2024 Provisions on Cross-Border Data Flows; "
                "CHINA_FACTS.md §4 rules 2-3",
            ),
            DataRule(
                Classification.GENERAL,
                Scope.HOME_JURISDICTION,
                1,
                False,
                "Data Security Law Art. 21; CHINA_FACTS.md §4 rule 4",
            ),
            DataRule(Classification.PUBLIC, Scope.ANYWHERE, 1, False, "no restriction"),
        )
    }
)


def export_cleared(dataset: Dataset) -> bool:
    """Whether personal information may leave its jurisdiction: cleared, or exempt."""
    return dataset.export_cleared or (
        not dataset.sensitive and dataset.individuals < PI_EXEMPT_BELOW
    )


def effective_scope(dataset: Dataset) -> Scope:
    """The scope of ``dataset`` after any export clearance or exemption."""
    rule = RULES[dataset.classification]
    if rule.exportable_when_cleared and export_cleared(dataset):
        return Scope.ANYWHERE
    return rule.scope


def breach(dataset: Dataset, site: Site, home: Site) -> str | None:
    """Why processing or holding ``dataset`` at ``site`` breaks its rule (``home`` is the
    dataset's home site), or ``None`` when allowed."""
    if site.id == home.id:
        return None
    rule = RULES[dataset.classification]
    scope = effective_scope(dataset)
    cls = dataset.classification
    if scope is Scope.HOME_SITE:
        return f"{cls} data {dataset.id} may not leave its home site {home.id} ({rule.source})"
    if scope is Scope.HOME_JURISDICTION and site.jurisdiction != home.jurisdiction:
        extra = ""
        if cls is Classification.PERSONAL:
            extra = f", {dataset.individuals:,} people, export not cleared"
        return (
            f"{cls} data {dataset.id} may not leave {home.jurisdiction} for {site.id} "
            f"({site.jurisdiction}){extra} ({rule.source})"
        )
    if site.security_level < rule.min_security_level:
        return (
            f"{cls} data {dataset.id} needs MLPS level {rule.min_security_level}, "
            f"{site.id} has {site.security_level} ({rule.source})"
        )
    return None


def breach_facts(dataset: Dataset, site: Site, home: Site) -> dict[str, str | int] | None:
    """``breach`` as facts for a structured reason (``engine.reasons``, code
    ``data_rule``): the dataset, its class, the rule's scope and source, the two sites'
    jurisdictions and MLPS levels; ``None`` exactly when ``breach`` is."""
    if breach(dataset, site, home) is None:
        return None
    rule = RULES[dataset.classification]
    facts: dict[str, str | int] = {
        "site_id": site.id,
        "dataset_id": dataset.id,
        "classification": str(dataset.classification),
        "scope": str(effective_scope(dataset)),
        "home_site": home.id,
        "home_jurisdiction": str(home.jurisdiction),
        "site_jurisdiction": str(site.jurisdiction),
        "min_security_level": rule.min_security_level,
        "security_level": site.security_level,
        "rule_source": rule.source,
    }
    if dataset.classification is Classification.PERSONAL:
        facts["individuals"] = dataset.individuals
    return facts
