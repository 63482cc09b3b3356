"""Network files: any computing-power network as a TOML file, read strictly.

A file has top-level keys ``name``, ``description``, ``source``, ``usd_to_cny`` (the one
exchange rate used to convert USD prices), ``reference_accelerator``, ``extends``, and the
tables below. Every error is a ``NetworkFileError`` naming the file, the place in it (e.g.
``sites[3].pools[0].count``) and the fix.

* ``[defaults]`` — values for every site of this file that does not state them (any site key
  except ``id``, ``name``, ``latitude``, ``longitude`` and ``pools``), plus ``host_power_w``
  and ``assumed`` for its pools.
* ``[accelerators.<id>]`` — ``vendor``, ``tflops_bf16``, ``memory_gb``, ``power_w``,
  ``source``; the types of ``computenet.catalog.accelerators`` are known without this.
* ``[signals.<name>]`` — a named signal sites refer to by name (``price = "tou-guangdong"``);
  a site may also write one inline (``carbon = { kind = "constant", value = 441.9 }``).
  Kinds: ``constant`` (``value``), ``tou`` (``flat_cny_per_kwh`` and ``[[...bands]]`` with
  ``name``, ``hours = [[start, end], ...]``, ``multiplier``, optional ``months``; evaluated in
  the site's local time), ``file`` (``path`` relative to this file, ``format`` one of
  ``computenet.signals.FORMATS`` and its options). Each may carry ``source`` and ``assumed``.
* ``[[sites]]`` — ``id``, ``name``, ``hub``, ``province``, ``jurisdiction`` (mainland,
  hong-kong, overseas), ``latitude``, ``longitude``, ``role`` (east, west, edge), ``pue``,
  ``security_level`` (MLPS 1-5), ``utc_offset_h``, ``egress_cny_per_gb``, ``executor``,
  ``latency_key`` (its key in the measured matrix), ``price``, ``carbon``, ``pools`` (a list of
  ``{accelerator, count, price_cny_per_h, host_power_w, assumed}``) and ``sources`` (field ->
  where its value comes from).
* ``[[regions]]`` — user regions: ``id``, ``name``, ``latitude``, ``longitude``,
  ``jurisdiction``, ``latency_key``.
* ``[links]`` — ``route_factor``, ``overhead_ms`` (the distance model), ``bandwidth_gbps``,
  ``egress_cny_per_gb``, ``source``, ``matrix = { path, format, aliases }`` (a measured RTT
  matrix, see ``computenet.network.matrices``) and ``[[links.pairs]]`` (``between = [a, b]``
  with ``rtt_ms``, ``bandwidth_gbps``, ``egress_cny_per_gb``, ``kind``, ``source``).
* ``green`` on a site — its direct green supply on top of its grid (``[[sites.green]]`` or a
  list of tables): ``kind`` (``share``, ``contract``, ``profile``), ``status`` (``reported``,
  ``contracted``, ``target``, ``assumed``), ``share`` (0-1), ``contract_mw``,
  ``capacity_mw`` and ``profile`` (``solar-clear-sky``), ``carbon_g_per_kwh`` (default 0),
  ``price_cny_per_kwh`` (default: the grid's price) and ``source``; see
  ``computenet.signals.green`` for how the effective price and carbon follow. A file that
  extends another sets a base site's supply with ``[green]`` (``horinger = [{ ... }]``).
* ``extends = "china"`` (or a path) starts from another network: its sites come first,
  ``remove_sites = [ids]`` drops some, ``[pools]`` maps a site id to the pools that replace
  that site's (``zhangjiakou = [{ accelerator = "H20", count = 2048 }]``), and tables with
  the same name (signals, accelerators, links keys) replace the base file's.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from computenet.catalog.accelerators import KNOWN_ACCELERATORS
from computenet.errors import InputError, NetworkFileError, SignalFileError, UnknownNameError
from computenet.model import (
    GREEN_KINDS,
    GREEN_PROFILES,
    GREEN_STATUSES,
    AcceleratorType,
    GreenSupply,
    Jurisdiction,
    Network,
    Pool,
    Role,
    Signal,
    Site,
    UserRegion,
)
from computenet.network import DistanceModel, LatencyMatrix, Links, PairLink, Place
from computenet.network.links import DEFAULT_BANDWIDTH_GBPS, DEFAULT_EGRESS_CNY_PER_GB
from computenet.network.matrices import MATRIX_FORMATS, read_gcp_zone_matrix, read_matrix
from computenet.signals import (
    FORMATS,
    ConstantSignal,
    SeriesSignal,
    TouBand,
    TouTariff,
    load_series,
)
from computenet.textfile import read_text

_MISSING: Any = object()

TOP_KEYS = (
    "name",
    "description",
    "source",
    "usd_to_cny",
    "reference_accelerator",
    "extends",
    "defaults",
    "accelerators",
    "signals",
    "sites",
    "regions",
    "links",
    "pools",
    "remove_sites",
    "green",
)
SITE_KEYS = (
    "id",
    "name",
    "hub",
    "province",
    "jurisdiction",
    "latitude",
    "longitude",
    "role",
    "pue",
    "security_level",
    "utc_offset_h",
    "egress_cny_per_gb",
    "executor",
    "latency_key",
    "price",
    "carbon",
    "pools",
    "sources",
    "green",
)
POOL_KEYS = ("accelerator", "count", "price_cny_per_h", "host_power_w", "assumed")
_NOT_DEFAULTABLE = ("id", "name", "latitude", "longitude", "pools", "green")
GREEN_KEYS = (
    "kind",
    "status",
    "source",
    "share",
    "contract_mw",
    "capacity_mw",
    "profile",
    "carbon_g_per_kwh",
    "price_cny_per_kwh",
)
DEFAULT_KEYS = (*(k for k in SITE_KEYS if k not in _NOT_DEFAULTABLE), "host_power_w", "assumed")
SIGNAL_KINDS = ("constant", "tou", "file")
UNITS = {"price": "CNY/kWh", "carbon": "gCO2/kWh"}


def _fail(file: Path, where: str, message: str, fix: str | None = None) -> NetworkFileError:
    return NetworkFileError(message, source=str(file), where=where or None, fix=fix)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class _Table:
    """A TOML table read strictly: typed getters, and ``done()`` rejects unknown keys.

    ``origin`` maps keys that came from elsewhere (``[defaults]``) to their own place.
    """

    def __init__(
        self,
        data: object,
        file: Path,
        where: str,
        keys: Iterable[str],
        origin: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(data, dict):
            raise _fail(
                file,
                where,
                f"expected a table, found {type(data).__name__}",
                "write it as a TOML table (key = value lines or { ... })",
            )
        self.data: dict[str, Any] = data
        self.file = file
        self.where = where
        self.keys = tuple(keys)
        self.origin = dict(origin or {})

    def place(self, key: str) -> str:
        if key in self.origin:
            return self.origin[key]
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str, fix: str | None = None) -> NetworkFileError:
        return _fail(self.file, self.place(key), message, fix)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = _MISSING, *, what: str = "a value") -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise _fail(
                self.file,
                self.place(key),
                f"missing key {key!r}",
                f"add {key} = <{what}> to {self.where or 'the top level'}",
            )
        return default

    def text(self, key: str, default: Any = _MISSING) -> Any:
        v = self.get(key, default, what="text")
        if v is not default and not isinstance(v, str):
            raise self.fail(key, f"{key} must be text, found {v!r}", f'write {key} = "..."')
        return v

    def number(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        lo: float | None = None,
        hi: float | None = None,
        above: float | None = None,
        unit: str = "",
    ) -> Any:
        v = self.get(key, default, what="number")
        if v is default:
            return v
        u = f" {unit}" if unit else ""
        if not _is_num(v) or not math.isfinite(v):
            raise self.fail(key, f"{key} must be a number{u}, found {v!r}", f"write {key} = 1.5")
        rng = []
        if lo is not None:
            rng.append(f">= {lo:g}")
        if above is not None:
            rng.append(f"> {above:g}")
        if hi is not None:
            rng.append(f"<= {hi:g}")
        bad = (
            (lo is not None and v < lo)
            or (above is not None and v <= above)
            or (hi is not None and v > hi)
        )
        if bad:
            raise self.fail(
                key, f"{key} = {v!r} is out of range", f"use a value {' and '.join(rng)}{u}"
            )
        return float(v)

    def whole(
        self, key: str, default: Any = _MISSING, *, lo: int | None = None, hi: int | None = None
    ) -> Any:
        v = self.get(key, default, what="whole number")
        if v is default:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(
                key,
                f"{key} must be a whole number, found {v!r}",
                f"write {key} = 8 (no quotes, no decimals)",
            )
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            span = f">= {lo}" if hi is None else f"from {lo} to {hi}"
            raise self.fail(key, f"{key} = {v} is out of range", f"use a whole number {span}")
        return v

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        v = self.get(key, default, what="true or false")
        if v is not default and not isinstance(v, bool):
            raise self.fail(key, f"{key} must be true or false, found {v!r}", f"write {key} = true")
        return v

    def choice(self, key: str, options: Iterable[str], default: Any = _MISSING) -> Any:
        opts = tuple(options)
        v = self.text(key, default)
        if v is not default and v not in opts:
            raise self.fail(key, f"{key} = {v!r} is not allowed", f"use one of: {', '.join(opts)}")
        return v

    def array(self, key: str, default: Any = _MISSING) -> Any:
        v = self.get(key, default, what="list")
        if v is not default and not isinstance(v, list):
            raise self.fail(key, f"{key} must be a list, found {v!r}", f"write {key} = [ ... ]")
        return v

    def table(self, key: str, keys: Iterable[str], default: Any = _MISSING) -> Any:
        v = self.get(key, default, what="table")
        if v is default:
            return v
        return _Table(v, self.file, self.place(key), keys)

    def done(self) -> None:
        """Reject keys this table does not know, suggesting the closest known one."""
        for key in self.data:
            if key not in self.keys:
                close = difflib.get_close_matches(key, self.keys, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    key,
                    f"unknown key {key!r}",
                    f"{hint}keys allowed here: {', '.join(self.keys)}",
                )


# ----------------------------------------------------------------------------- specs


@dataclass
class _SignalSpec:
    """A signal as written, resolved into a ``Signal`` once the site's offset is known."""

    kind: str
    table: _Table
    name: str = ""  # for named signals
    source: str = ""
    assumed: bool = False
    value: float = 0.0
    flat: float = 0.0
    bands: tuple[TouBand, ...] = ()
    path: Path | None = None
    fmt: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    unit: str = ""  # as written (optional); must match the quantity it is used for


@dataclass
class _SiteSpec:
    table: _Table
    index: int
    fields: dict[str, Any]
    pools: tuple[Pool, ...]
    pool_places: tuple[tuple[Path, str], ...]  # (file, place) of each pool
    price: _SignalSpec | tuple[str, str]  # inline spec, or (name, place)
    carbon: _SignalSpec | tuple[str, str]
    sources: dict[str, str]
    green: tuple[GreenSupply, ...] = ()


@dataclass
class _Doc:
    path: Path
    top: _Table
    name: str | None = None
    description: str = ""
    source: str = ""
    usd_to_cny: float | None = None
    reference: tuple[str, str] | None = None  # (accelerator, place)
    accelerators: dict[str, AcceleratorType] = field(default_factory=dict)
    signals: dict[str, _SignalSpec] = field(default_factory=dict)
    links: dict[str, tuple[Any, _Table]] = field(default_factory=dict)
    pairs: list[tuple[_Table, PairLink, tuple[str, str]]] = field(default_factory=list)
    sites: list[_SiteSpec] = field(default_factory=list)
    regions: list[tuple[UserRegion, str, _Table]] = field(default_factory=list)
    pools_override: dict[str, tuple[tuple[Pool, ...], tuple[tuple[Path, str], ...], _Table]] = (
        field(default_factory=dict)
    )
    remove_sites: list[tuple[str, str]] = field(default_factory=list)
    green_override: dict[str, tuple[tuple[GreenSupply, ...], _Table]] = field(default_factory=dict)


# ----------------------------------------------------------------------------- parsing


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise NetworkFileError(
            "network file not found", source=str(path), fix="give the path of a .toml file"
        )
    # UTF-8 with or without a byte-order mark; any other encoding names its line.
    text = read_text(path, error=NetworkFileError)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NetworkFileError(
            f"not valid TOML: {exc}",
            source=str(path),
            fix="correct the syntax at that line (see https://toml.io)",
        ) from None


def _parse_signal(t: _Table, name: str = "") -> _SignalSpec:
    kind = t.choice("kind", SIGNAL_KINDS)
    common = ("kind", "source", "assumed")
    spec = _SignalSpec(kind, t, name, t.text("source", ""), t.flag("assumed", False))
    if kind == "constant":
        t.keys = (*common, "value", "unit")
        spec.value = t.number("value")
        spec.unit = t.text("unit", "")
    elif kind == "tou":
        t.keys = (*common, "flat_cny_per_kwh", "bands")
        spec.flat = t.number("flat_cny_per_kwh", lo=0.0, unit="CNY/kWh")
        bands = t.array("bands")
        out = []
        for i, raw in enumerate(bands):
            b = _Table(
                raw, t.file, f"{t.place('bands')}[{i}]", ("name", "hours", "multiplier", "months")
            )
            hours = b.array("hours")
            rngs = []
            for j, r in enumerate(hours):
                if not (
                    isinstance(r, list)
                    and len(r) == 2
                    and all(isinstance(h, int) and not isinstance(h, bool) for h in r)
                ):
                    raise b.fail(
                        "hours",
                        f"hour range {r!r} (hours[{j}]) is not [start, end] in whole hours",
                        "write hours = [[10, 12], [14, 19]]",
                    )
                rngs.append((r[0], r[1]))
            months = b.array("months", [])
            if not all(isinstance(m, int) and not isinstance(m, bool) for m in months):
                raise b.fail(
                    "months",
                    f"months {months!r} must be whole numbers 1-12",
                    "write months = [7, 8, 9]",
                )
            out.append(
                TouBand(b.text("name"), tuple(rngs), b.number("multiplier", lo=0.0), tuple(months))
            )
            b.done()
        spec.bands = tuple(out)
        # Validate now (coverage of the day), at offset 8; sites re-check with theirs.
        _tou(spec, 8.0)
    else:
        fmt = t.choice("format", FORMATS)
        opts = FORMATS[fmt].options
        t.keys = (*common, "path", "format", *opts, "unit")
        spec.fmt = fmt
        rel = t.text("path")
        spec.path = (t.file.parent / rel).resolve()
        for o in opts:
            if t.has(o):
                spec.options[o] = t.number(o) if o in ("scale", "utc_offset_h") else t.text(o)
        if fmt == "csv":
            for o in ("time_column", "value_column"):
                spec.options[o] = t.text(o)
        spec.unit = t.text("unit", "")
    t.done()
    return spec


def _tou(spec: _SignalSpec, utc_offset_h: float) -> TouTariff:
    try:
        return TouTariff(
            spec.flat,
            spec.bands,
            utc_offset_h=utc_offset_h,
            name=spec.name,
            source=spec.source,
        )
    except InputError as exc:
        where = spec.table.where
        raise _fail(
            spec.table.file,
            f"{where}.{exc.where}" if exc.where else where,
            exc.message,
            exc.fix,
        ) from None


def _signal_ref(t: _Table, key: str) -> _SignalSpec | tuple[str, str]:
    v = t.get(key, what='signal name, or { kind = "constant", value = ... }')
    if isinstance(v, str):
        return (v, t.place(key))
    if isinstance(v, dict):
        return _parse_signal(_Table(v, t.file, t.place(key), ()))
    raise t.fail(
        key,
        f"{key} must name a signal or be a signal table, found {v!r}",
        f'write {key} = "<name of a [signals.<name>] table>" or an inline '
        '{ kind = "constant", value = ... }',
    )


def _parse_pools(
    raw: object, file: Path, where: str, defaults: Mapping[str, Any], origin: Mapping[str, str]
) -> tuple[tuple[Pool, ...], tuple[tuple[Path, str], ...]]:
    if not isinstance(raw, list):
        raise _fail(
            file,
            where,
            f"pools must be a list of tables, found {raw!r}",
            'write pools = [{ accelerator = "A100", count = 64 }]',
        )
    pools, places = [], []
    for i, item in enumerate(raw):
        merged = {**{k: v for k, v in defaults.items() if k in ("host_power_w", "assumed")}}
        if isinstance(item, dict):
            merged.update(item)
        else:
            merged = item
        org = {
            k: origin[k]
            for k in ("host_power_w", "assumed")
            if k in origin and isinstance(item, dict) and k not in item
        }
        p = _Table(merged, file, f"{where}[{i}]", POOL_KEYS, org)
        pools.append(
            Pool(
                accelerator=p.text("accelerator"),
                count=p.whole("count", lo=0),
                price_cny_per_h=p.number("price_cny_per_h", 0.0, lo=0.0, unit="CNY/h"),
                host_power_w=p.number("host_power_w", 0.0, lo=0.0, unit="W"),
                assumed=p.flag("assumed", False),
            )
        )
        places.append((file, f"{where}[{i}]"))
        p.done()
    return tuple(pools), tuple(places)


def _parse_green(raw: object, file: Path, where: str) -> tuple[GreenSupply, ...]:
    """A site's ``green``: one table or a list of them (``GreenSupply``)."""
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        g = _Table(item, file, f"{where}[{i}]" if isinstance(raw, list) else where, GREEN_KEYS)
        kind = g.choice("kind", GREEN_KINDS)
        supply = GreenSupply(
            kind=kind,
            status=g.choice("status", GREEN_STATUSES),
            source=g.text("source", ""),
            share=g.number("share", lo=0.0, hi=1.0) if kind == "share" else 0.0,
            contract_mw=(
                g.number("contract_mw", above=0.0, unit="MW") if kind == "contract" else 0.0
            ),
            capacity_mw=(
                g.number("capacity_mw", above=0.0, unit="MW") if kind == "profile" else 0.0
            ),
            profile=(
                g.choice("profile", GREEN_PROFILES, GREEN_PROFILES[0])
                if kind == "profile"
                else GREEN_PROFILES[0]
            ),
            carbon_g_per_kwh=g.number("carbon_g_per_kwh", 0.0, lo=0.0, unit="gCO2/kWh"),
            price_cny_per_kwh=g.number("price_cny_per_kwh", None, lo=0.0, unit="CNY/kWh"),
        )
        unused = {"share": "share", "contract": "contract_mw", "profile": "capacity_mw"}
        for k, key in unused.items():
            if k != kind and g.has(key):
                raise g.fail(
                    key,
                    f"{key} does not apply to a {kind!r} supply",
                    f"remove {key}, or write kind = {k!r}",
                )
        if kind != "profile" and g.has("profile"):
            raise g.fail("profile", "profile applies to kind = 'profile' only", "remove it")
        g.done()
        out.append(supply)
    return tuple(out)


def _parse_site(raw: object, file: Path, index: int, defaults: _Table | None) -> _SiteSpec:
    where = f"sites[{index}]"
    dflt = dict(defaults.data) if defaults is not None else {}
    site_part = {k: v for k, v in dflt.items() if k not in ("host_power_w", "assumed")}
    if not isinstance(raw, dict):
        raise _fail(file, where, "a site must be a table", "write it as a [[sites]] table")
    merged = {**site_part, **raw}
    dsrc = dflt.get("sources") if isinstance(dflt.get("sources"), dict) else {}
    if "sources" in raw and isinstance(raw["sources"], dict) and dsrc:
        merged["sources"] = {**dsrc, **raw["sources"]}
    origin = {k: f"defaults.{k}" for k in dflt if k not in raw}
    t = _Table(merged, file, where, SITE_KEYS, origin)
    fields = {
        "id": t.text("id"),
        "name": t.text("name", ""),
        "hub": t.text("hub", ""),
        "province": t.text("province", ""),
        "jurisdiction": Jurisdiction(
            t.choice("jurisdiction", [j.value for j in Jurisdiction], "mainland")
        ),
        "latitude": t.number("latitude", lo=-90.0, hi=90.0, unit="degrees"),
        "longitude": t.number("longitude", lo=-180.0, hi=180.0, unit="degrees"),
        "role": Role(t.choice("role", [r.value for r in Role])),
        "pue": t.number("pue", lo=1.0, hi=5.0),
        "security_level": t.whole("security_level", 3, lo=1, hi=5),
        "utc_offset_h": t.number("utc_offset_h", 8.0, lo=-14.0, hi=14.0, unit="h"),
        "egress_cny_per_gb": t.number("egress_cny_per_gb", 0.0, lo=0.0, unit="CNY/GB"),
        **_executor(t),
        "latency_key": t.text("latency_key", ""),
    }
    if not fields["id"].strip():
        raise t.fail("id", "site id is empty", 'give the site an id, e.g. id = "shaoguan"')
    if not fields["name"]:
        fields["name"] = fields["id"]
    pools, places = _parse_pools(t.get("pools", []), file, t.place("pools"), dflt, origin)
    sources_t = t.table("sources", (), {})
    sources: dict[str, str] = {}
    if isinstance(sources_t, _Table):
        for k, v in sources_t.data.items():
            if not isinstance(v, str):
                raise sources_t.fail(
                    k,
                    f"source of {k} must be text, found {v!r}",
                    f'write {k} = "where the value comes from"',
                )
            sources[k] = v
    spec = _SiteSpec(
        t,
        index,
        fields,
        pools,
        places,
        _signal_ref(t, "price"),
        _signal_ref(t, "carbon"),
        sources,
        _parse_green(t.get("green"), file, t.place("green")) if t.has("green") else (),
    )
    t.done()
    return spec


def _executor(t: _Table) -> dict[str, Any]:
    """A site's ``executor``: a kind (``"local"``) or a table naming the kind and its
    settings (``{ kind = "slurm", conf = "/etc/slurm-a/slurm.conf", partition = "gpu" }``).
    The kind is checked when the service builds the executor, which knows the registry."""
    raw = t.get("executor", "simulated")
    if isinstance(raw, str):
        return {"executor": raw, "executor_options": {}}
    if not isinstance(raw, dict) or not isinstance(raw.get("kind"), str):
        raise t.fail(
            "executor",
            f"executor must be a kind or a table with a kind, found {raw!r}",
            'write executor = "local" or executor = { kind = "slurm", conf = "..." }',
        )
    options = {k: v for k, v in raw.items() if k != "kind"}
    return {"executor": raw["kind"], "executor_options": options}


def _parse_doc(path: Path) -> _Doc:
    raw = _read_toml(path)
    top = _Table(raw, path, "", TOP_KEYS)
    doc = _Doc(path, top)
    doc.name = top.text("name", None)
    doc.description = top.text("description", "")
    doc.source = top.text("source", "")
    doc.usd_to_cny = top.number("usd_to_cny", None, above=0.0, unit="CNY per USD")
    ref = top.text("reference_accelerator", None)
    if ref is not None:
        doc.reference = (ref, top.place("reference_accelerator"))
    top.text("extends", None)
    defaults = top.table("defaults", DEFAULT_KEYS, None)
    if defaults is not None:
        defaults.done()
    accs = top.table("accelerators", (), {})
    if isinstance(accs, _Table):
        for aid, body in accs.data.items():
            a = _Table(
                body,
                path,
                f"accelerators.{aid}",
                ("vendor", "tflops_bf16", "memory_gb", "power_w", "source"),
            )
            doc.accelerators[aid] = AcceleratorType(
                aid,
                a.text("vendor", ""),
                a.number("tflops_bf16", above=0.0, unit="TFLOPS"),
                a.number("memory_gb", 0.0, lo=0.0, unit="GB"),
                a.number("power_w", above=0.0, unit="W"),
                a.text("source", ""),
            )
            a.done()
    sigs = top.table("signals", (), {})
    if isinstance(sigs, _Table):
        for name, body in sigs.data.items():
            doc.signals[name] = _parse_signal(_Table(body, path, f"signals.{name}", ()), name)
    links = top.table(
        "links",
        (
            "route_factor",
            "overhead_ms",
            "bandwidth_gbps",
            "egress_cny_per_gb",
            "source",
            "matrix",
            "pairs",
        ),
        None,
    )
    if links is not None:
        _parse_links(doc, links)
    for i, s in enumerate(top.array("sites", [])):
        doc.sites.append(_parse_site(s, path, i, defaults))
    for i, r in enumerate(top.array("regions", [])):
        rt = _Table(
            r,
            path,
            f"regions[{i}]",
            ("id", "name", "latitude", "longitude", "jurisdiction", "latency_key"),
        )
        region = UserRegion(
            rt.text("id"),
            rt.text("name", ""),
            rt.number("latitude", lo=-90.0, hi=90.0, unit="degrees"),
            rt.number("longitude", lo=-180.0, hi=180.0, unit="degrees"),
            Jurisdiction(rt.choice("jurisdiction", [j.value for j in Jurisdiction], "mainland")),
        )
        doc.regions.append((region, rt.text("latency_key", ""), rt))
        rt.done()
    over = top.table("pools", (), {})
    if isinstance(over, _Table):
        for sid, body in over.data.items():
            pools, places = _parse_pools(body, path, f"pools.{sid}", {}, {})
            doc.pools_override[sid] = (pools, places, over)
    green = top.table("green", (), {})
    if isinstance(green, _Table):
        for sid, body in green.data.items():
            doc.green_override[sid] = (_parse_green(body, path, f"green.{sid}"), green)
    for i, sid in enumerate(top.array("remove_sites", [])):
        if not isinstance(sid, str):
            raise top.fail(
                "remove_sites",
                f"remove_sites[{i}] = {sid!r} is not a site id",
                'write remove_sites = ["site-id", ...]',
            )
        doc.remove_sites.append((sid, f"remove_sites[{i}]"))
    top.done()
    return doc


def _parse_links(doc: _Doc, t: _Table) -> None:
    for key, kw in (
        ("route_factor", {"lo": 1.0}),
        ("overhead_ms", {"lo": 0.0, "unit": "ms"}),
        ("bandwidth_gbps", {"above": 0.0, "unit": "Gb/s"}),
        ("egress_cny_per_gb", {"lo": 0.0, "unit": "CNY/GB"}),
    ):
        if t.has(key):
            doc.links[key] = (t.number(key, **kw), t)
    if t.has("source"):
        doc.links["source"] = (t.text("source"), t)
    if t.has("matrix"):
        m = t.table("matrix", ("path", "format", "aliases"))
        fmt = m.choice("format", MATRIX_FORMATS)
        mpath = (t.file.parent / m.text("path")).resolve()
        aliases = m.table("aliases", (), {})
        alias_map = dict(aliases.data) if isinstance(aliases, _Table) else {}
        if not all(isinstance(v, str) for v in alias_map.values()):
            raise m.fail(
                "aliases",
                "aliases must map codes to codes (text)",
                'write aliases = { AUS-NSW = "AU-NSW" }',
            )
        m.done()
        doc.links["matrix"] = ((mpath, fmt, alias_map), m)
    for i, raw in enumerate(t.array("pairs", [])):
        p = _Table(
            raw,
            t.file,
            f"{t.place('pairs')}[{i}]",
            ("between", "rtt_ms", "bandwidth_gbps", "egress_cny_per_gb", "kind", "source"),
        )
        between = p.array("between")
        if (
            len(between) != 2
            or not all(isinstance(x, str) for x in between)
            or (between[0] == between[1])
        ):
            raise p.fail(
                "between",
                f"between = {between!r} is not two different place ids",
                'write between = ["site-a", "site-b"]',
            )
        pair = PairLink(
            rtt_ms=p.number("rtt_ms", None, lo=0.0, unit="ms"),
            bandwidth_gbps=p.number("bandwidth_gbps", None, above=0.0, unit="Gb/s"),
            egress_cny_per_gb=p.number("egress_cny_per_gb", None, lo=0.0, unit="CNY/GB"),
            kind=p.choice("kind", ("measured", "modelled"), "measured"),
            source=p.text("source", ""),
        )
        p.done()
        doc.pairs.append((p, pair, (between[0], between[1])))
    t.done()


# ----------------------------------------------------------------------------- building


def _merge(base: _Doc, child: _Doc) -> _Doc:
    """``child`` applied on top of ``base`` (see the module docstring)."""
    out = _Doc(child.path, child.top)
    out.name = child.name or base.name
    out.description = child.description or base.description
    out.source = child.source or base.source
    out.usd_to_cny = child.usd_to_cny if child.usd_to_cny is not None else base.usd_to_cny
    out.reference = child.reference or base.reference
    out.accelerators = {**base.accelerators, **child.accelerators}
    out.signals = {**base.signals, **child.signals}
    out.links = {**base.links, **child.links}
    out.pairs = [*base.pairs, *child.pairs]
    by_id = {s.fields["id"]: s for s in base.sites}
    for sid, place in child.remove_sites:
        if sid not in by_id:
            raise _fail(
                child.path,
                place,
                f"no site {sid!r} to remove in the base network",
                f"use one of: {', '.join(by_id)}",
            )
        del by_id[sid]
    kept = [s for s in base.sites if s.fields["id"] in by_id]
    for sid, (pools, places, t) in child.pools_override.items():
        if sid not in by_id:
            raise t.fail(
                sid,
                f"no site {sid!r} in the base network to give pools to",
                f"use one of: {', '.join(by_id) or '(none)'}",
            )
        by_id[sid].pools, by_id[sid].pool_places = pools, places
    for sid, (supplies, t) in child.green_override.items():
        if sid not in by_id:
            raise t.fail(
                sid,
                f"no site {sid!r} in the base network to give green supply to",
                f"use one of: {', '.join(by_id) or '(none)'}",
            )
        by_id[sid].green = supplies
    out.sites = [*kept, *child.sites]
    out.regions = [*base.regions, *child.regions]
    return out


def _load_doc(path: Path, seen: tuple[Path, ...] = ()) -> _Doc:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(p.name for p in (*seen, path))
        raise NetworkFileError(
            f"extends loops back: {chain}", source=str(path), where="extends", fix="remove the loop"
        )
    doc = _parse_doc(path)
    ext = doc.top.data.get("extends")
    if ext is None:
        if doc.pools_override or doc.remove_sites or doc.green_override:
            key = "pools" if doc.pools_override else "remove_sites" if doc.remove_sites else "green"
            raise _fail(
                path,
                key,
                f"{key} only applies to a network that extends another",
                'add extends = "china" (or a path), or put the pools in the sites',
            )
        return doc
    from computenet.catalog import BUILTIN

    if ext in BUILTIN:
        base_path = BUILTIN[ext]
    else:
        base_path = (path.parent / ext).resolve()
        if not base_path.is_file():
            raise _fail(
                path,
                "extends",
                f"extends {ext!r}: no such built-in network or file",
                f"use one of: {', '.join(BUILTIN)}, or a path relative to this file",
            )
    return _merge(_load_doc(base_path, (*seen, path)), doc)


def _check_not_negative(spec: _SignalSpec, sig: Signal) -> None:
    """Carbon intensity is never below 0: a negative value is a sign or unit mistake."""
    if spec.kind == "constant":
        if spec.value < 0:
            raise _fail(
                spec.table.file,
                f"{spec.table.where}.value",
                f"carbon {spec.value:g} gCO2/kWh is below 0",
                "write the grid's carbon intensity, 0 or more gCO2/kWh",
            )
        return
    values = getattr(sig, "values", None)
    if values is not None and len(values) and float(min(values)) < 0:
        raise _fail(
            spec.table.file,
            f"{spec.table.where}.path",
            f"the carbon file {spec.path} holds {float(min(values)):g} gCO2/kWh, below 0",
            "correct the file's values (0 or more gCO2/kWh), or its scale",
        )


def _resolver(
    doc: _Doc, usd_to_cny: float
) -> Callable[[_SignalSpec | tuple[str, str], str, float, _Table], tuple[Signal, str, bool]]:
    files: dict[int, Signal] = {}

    def resolve(
        ref: _SignalSpec | tuple[str, str], quantity: str, offset_h: float, site: _Table
    ) -> tuple[Signal, str, bool]:
        if isinstance(ref, tuple):
            name, place = ref
            spec = doc.signals.get(name)
            if spec is None:
                raise _fail(
                    site.file,
                    place,
                    f"no signal named {name!r}",
                    f"define [signals.{name}] or use one of: "
                    f"{', '.join(doc.signals) or '(none defined)'}",
                )
        else:
            spec = ref
        where = spec.table.where
        unit = UNITS[quantity]
        if spec.unit and spec.unit != unit:
            raise _fail(
                spec.table.file,
                f"{where}.unit",
                f"unit {spec.unit!r} is not {unit}, the unit of {quantity} signals",
                f"convert the values to {unit} (a csv file can use scale = ...), or use "
                "format usd-mwh for prices in USD/MWh",
            )
        if spec.kind == "constant":
            sig = cast(Signal, ConstantSignal(spec.value, unit))
        elif spec.kind == "tou":
            if quantity != "price":
                raise _fail(
                    spec.table.file,
                    where,
                    f"a tou tariff is a price, not a {quantity} signal",
                    f"use a constant or a file signal for {quantity}",
                )
            sig = cast(Signal, _tou(spec, offset_h))
        else:
            fq = FORMATS[spec.fmt].quantity
            if fq not in ("any", quantity):
                raise _fail(
                    spec.table.file,
                    f"{where}.format",
                    f"format {spec.fmt!r} holds {fq}, not {quantity}",
                    f"use a {quantity} format: "
                    + ", ".join(n for n, f in FORMATS.items() if f.quantity in ("any", quantity)),
                )
            cached = files.get(id(spec))
            if cached is None:
                series: SeriesSignal
                try:
                    opts = dict(spec.options)
                    if spec.fmt == "csv":
                        opts["unit"] = unit
                    series = load_series(
                        cast(Path, spec.path), spec.fmt, usd_to_cny=usd_to_cny, **opts
                    )
                except SignalFileError as exc:
                    raise _fail(
                        spec.table.file,
                        f"{where}.path",
                        f"bad signal file: {exc}",
                        exc.fix or "correct the file or the path",
                    ) from exc
                cached = files[id(spec)] = cast(Signal, series)
            sig = cached
        if quantity == "carbon":
            _check_not_negative(spec, sig)
        src = spec.source or (f"{spec.fmt} file {spec.path}" if spec.kind == "file" else "")
        return sig, src, spec.assumed

    return resolve


def build(path: Path, *, builtin_name: str | None = None) -> Network:
    """The ``Network`` a file describes; see the module docstring for the format."""
    doc = _load_doc(Path(path))
    file = doc.path
    if not doc.name:
        raise _fail(file, "name", "missing key 'name'", 'add name = "my-network" at the top')
    if not doc.sites:
        raise _fail(
            file,
            "sites",
            "the network has no sites",
            "add at least one [[sites]] table (or remove fewer sites)",
        )
    usd_to_cny = doc.usd_to_cny if doc.usd_to_cny is not None else 7.1
    uses_usd = any(
        isinstance(s, _SignalSpec) and s.kind == "file" and s.fmt == "usd-mwh"
        for s in (*doc.signals.values(), *(x.price for x in doc.sites))
    )
    if uses_usd and doc.usd_to_cny is None:
        raise _fail(
            file,
            "usd_to_cny",
            "prices in USD need an exchange rate",
            "state it at the top, e.g. usd_to_cny = 7.1 (CNY per USD)",
        )
    accelerators = {**KNOWN_ACCELERATORS, **doc.accelerators}
    resolve = _resolver(doc, usd_to_cny)
    seen: dict[str, str] = {}
    sites: list[Site] = []
    for s in doc.sites:
        sid = s.fields["id"]
        here = f"{s.table.where} ({s.table.file.name})" if s.table.file != file else s.table.where
        if sid in seen:
            raise s.table.fail(
                "id",
                f"site id {sid!r} is already used by {seen[sid]}",
                "give every site a different id",
            )
        seen[sid] = here
        for pool, (pfile, place) in zip(s.pools, s.pool_places, strict=True):
            if pool.accelerator not in accelerators:
                raise _fail(
                    pfile,
                    f"{place}.accelerator",
                    f"unknown accelerator {pool.accelerator!r}",
                    f"use one of: {', '.join(sorted(accelerators))}, or define it in "
                    f"[accelerators.{pool.accelerator}]",
                )
        off = s.fields["utc_offset_h"]
        price, psrc, passumed = resolve(s.price, "price", off, s.table)
        carbon, csrc, cassumed = resolve(s.carbon, "carbon", off, s.table)
        sources = dict(s.sources)
        if psrc:
            sources.setdefault(
                "price", ("assumption: " if passumed and "assum" not in psrc else "") + psrc
            )
        if csrc:
            sources.setdefault(
                "carbon", ("assumption: " if cassumed and "assum" not in csrc else "") + csrc
            )
        fields = {k: v for k, v in s.fields.items() if k != "latency_key"}
        sites.append(
            Site(
                **fields,
                pools=s.pools,
                price=price,
                carbon=carbon,
                sources=sources,
                green=s.green,
                grid_price=price if s.green else None,
                grid_carbon=carbon if s.green else None,
            )
        )
    site_ids = set(seen)
    regions: list[UserRegion] = []
    places: dict[str, Place] = {}
    for site, spec in zip(sites, doc.sites, strict=True):
        places[site.id] = Place(site.id, site.latitude, site.longitude, spec.fields["latency_key"])
    for region, key, rt in doc.regions:
        if region.id in places:
            what = "a site" if region.id in site_ids else "another region"
            raise rt.fail(
                "id",
                f"region id {region.id!r} is already used by {what}",
                "give regions ids that no site or region uses, e.g. users-<city>",
            )
        regions.append(region)
        places[region.id] = Place(region.id, region.latitude, region.longitude, key)
    ref_name, ref_place = doc.reference or ("A100", "reference_accelerator")
    if ref_name not in accelerators:
        raise _fail(
            file,
            ref_place,
            f"unknown reference accelerator {ref_name!r}",
            f"use one of: {', '.join(sorted(accelerators))}",
        )
    used = {p.accelerator for s in sites for p in s.pools} | {ref_name}
    links = _build_links(doc, places, sites)
    return Network(
        name=doc.name,
        sites=tuple(sites),
        accelerators={a: accelerators[a] for a in sorted(used)},
        links=links,
        regions=tuple(regions),
        usd_to_cny=usd_to_cny,
        reference_accelerator=ref_name,
        source=(f"built-in network {builtin_name!r}" if builtin_name else str(file))
        + (f": {doc.source}" if doc.source else ""),
    )


def _build_links(doc: _Doc, places: Mapping[str, Place], sites: Iterable[Site]) -> Links:
    lk = {k: v for k, (v, _) in doc.links.items()}
    try:
        model = DistanceModel(lk.get("route_factor", 1.5), lk.get("overhead_ms", 2.0))
    except InputError as exc:  # pragma: no cover - ranges are checked when parsing
        raise _fail(doc.path, f"links.{exc.where}", exc.message, exc.fix) from None
    measured: LatencyMatrix | None = None
    if "matrix" in doc.links:
        (mpath, fmt, aliases), mt = doc.links["matrix"]
        try:
            measured = (
                read_gcp_zone_matrix(mpath, aliases=aliases)
                if fmt == "gcp-zones"
                else read_matrix(mpath, fmt)
            )
        except (InputError, UnknownNameError) as exc:
            raise mt.fail(
                "path", f"bad latency matrix: {exc}", "correct the file or the path"
            ) from exc
    pairs: dict[frozenset[str], PairLink] = {}
    for p, pair, (a, b) in doc.pairs:
        for x in (a, b):
            if x not in places:
                raise p.fail(
                    "between", f"no site or region {x!r}", f"use one of: {', '.join(places)}"
                )
        key = frozenset((a, b))
        if key in pairs:
            raise p.fail("between", f"the pair {a}-{b} is stated twice", "state each pair once")
        pairs[key] = pair
    return Links(
        places=dict(places),
        model=model,
        measured=measured,
        bandwidth_gbps_default=lk.get("bandwidth_gbps", DEFAULT_BANDWIDTH_GBPS),
        egress_cny_per_gb_default=lk.get("egress_cny_per_gb", DEFAULT_EGRESS_CNY_PER_GB),
        egress_by_place={s.id: s.egress_cny_per_gb for s in sites if s.egress_cny_per_gb > 0},
        pairs=pairs,
        source=lk.get("source", ""),
    )
