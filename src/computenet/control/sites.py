"""One executor per site, built once when the service starts.

A site's network-file ``executor`` names its kind and options. Sites that say ``simulated``
(every site of the built-in catalog) get the service's default executor (``serve
--executor``), which is ``simulated`` itself unless the operator enables ``local``.
Everything is checked here, at start: a bad kind or option stops ``serve`` with the site
and the fix, instead of failing every loop tick.
"""

from __future__ import annotations

from typing import Any

from computenet.errors import ComputenetError, InputError
from computenet.executors.base import Executor
from computenet.executors.registry import make_executor
from computenet.settings import Settings

FALLBACK_SITE = "local"  # the one site of a service that has no network loaded
SIMULATED = "simulated"


def build_site_executors(network: Any, settings: Settings) -> dict[str, Executor]:
    """Site id -> its executor. Without a network: one site, ``local``, on the default."""
    if network is None:
        return {FALLBACK_SITE: _build(settings.executor, FALLBACK_SITE, {}, settings, None)}
    out: dict[str, Executor] = {}
    for site in network.sites:
        if site.executor == SIMULATED:
            out[site.id] = _build(settings.executor, site.id, {}, settings, None)
        else:
            out[site.id] = _build(site.executor, site.id, site.executor_options, settings, site)
    return out


def _build(kind: str, site_id: str, options: Any, settings: Settings, site: Any) -> Executor:
    where = f"sites.{site_id}.executor"
    source = "--executor" if site is None else f"network file {settings.network!r}"
    try:
        executor: Executor = make_executor(
            kind, site_id, options, settings.home, source=f"{source}: {where}"
        )
    except ComputenetError:
        raise
    except Exception as exc:  # an executor's own constructor failing on its options
        raise InputError(
            f"the {kind!r} executor of site {site_id!r} could not be built: {exc}",
            source=source,
            where=where,
            fix=f"correct the options of sites.{site_id}.executor (see the README's executors)",
        ) from exc
    return executor


def capabilities_dict(executor: Executor) -> dict[str, bool]:
    caps = executor.capabilities
    return {name: bool(getattr(caps, name)) for name in caps.__dataclass_fields__}
