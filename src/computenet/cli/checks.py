"""Checks of command-line options that run before any work starts, and the printing of
user text (ids, names, file names, error messages) as it is, never as Rich markup."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from computenet.errors import InputError, UnknownNameError
from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T

CARBON_PRICE_HELP = (
    f"CNY per tonne CO2 in the objective (default {DEFAULT_CARBON_PRICE_CNY_PER_T:,.0f}, "
    "computenet.model.DEFAULT_CARBON_PRICE_CNY_PER_T)."
)


def carbon_price_or_default(value: float | None, source: str = "--carbon-price") -> float:
    """The carbon price to use: the documented default when not given; finite and >= 0."""
    if value is None:
        return DEFAULT_CARBON_PRICE_CNY_PER_T
    if not math.isfinite(value) or value < 0:
        raise InputError(
            f"{value} is not a carbon price",
            source=source,
            fix=f"give a finite number of CNY per tonne, 0 or more "
            f"(default {DEFAULT_CARBON_PRICE_CNY_PER_T:,.0f})",
        )
    return value


def writable(path: Path | None, source: str) -> None:
    """Refuse an output path whose folder does not exist, or that is a folder, before the
    run that would write it."""
    if path is None:
        return
    if path.is_dir():
        raise InputError("is a folder, not a file", source=source, fix=f"write e.g. {path}/out")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(
            f"folder {folder} does not exist",
            source=source,
            fix=f"create it first (mkdir -p {folder}) or write to an existing folder",
        )


def known_policies(names: Iterable[str], source: str = "--policy") -> None:
    """Every name a registered placement policy (the engine loads on first use)."""
    from computenet.sim.simulator import _sibling

    registered = _sibling("computenet.engine", "POLICIES", "placement policies")
    for name in names:
        if name not in registered:
            raise UnknownNameError("policy", name, registered, source=source)


def literal(text: Any) -> Any:
    """``text`` as a Rich ``Text``: printed as written, brackets and all (a job id such as
    ``[/x]`` would otherwise be read as markup and crash the print or vanish)."""
    from rich.text import Text

    return Text(str(text))


def number(
    value: float | None,
    source: str,
    *,
    lo: float | None = None,
    above: float | None = None,
    hi: float | None = None,
    below: float | None = None,
) -> None:
    """Refuse an option that is not finite or out of its range (``None``: not given)."""
    if value is None:
        return
    bounds = (
        (lo, ">=", lo is not None and value < lo),
        (above, ">", above is not None and value <= above),
        (hi, "<=", hi is not None and value > hi),
        (below, "<", below is not None and value >= below),
    )
    wanted = " and ".join(f"{op} {b:g}" for b, op, _ in bounds if b is not None) or "finite"
    if not math.isfinite(value) or any(bad for _, _, bad in bounds):
        raise InputError(f"{value:g} is out of range", source=source, fix=f"give a number {wanted}")


GREEN_SUPPLY_HELP = (
    "Direct green supply mixed into price and carbon: declared (all but policy targets), "
    "targets (those too), off (grid only)."
)
CARBON_MODEL_HELP = (
    "annual: the grid's stated factor; hourly: a modelled hourly series for mainland "
    "provinces (solar and wind capacity, scaled to the annual factor; labelled modelled)."
)
