"""Executors registered by kind, as SkyPilot registers clouds: ``@register("slurm")``.

Each executor module imports only the standard library at import time; its client library
(``ray``, ``kubernetes``) is imported when an executor of that kind is built, so the service
starts without extras it does not use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from computenet.errors import UnknownNameError

T = TypeVar("T")

_REGISTRY: dict[str, Any] = {}


def register(kind: str) -> Callable[[T], T]:
    """Class decorator: make the executor class available under ``kind``."""

    def add(cls: T) -> T:
        if kind in _REGISTRY and _REGISTRY[kind] is not cls:
            raise ValueError(f"executor kind {kind!r} registered twice")
        _REGISTRY[kind] = cls
        cls.kind = kind  # type: ignore[attr-defined]
        return cls

    return add


def kinds() -> tuple[str, ...]:
    """Every registered executor kind, sorted."""
    _load_builtin()
    return tuple(sorted(_REGISTRY))


def executor_class(kind: str, *, source: str = "executor") -> Any:
    """The class registered as ``kind``; an unknown kind lists the valid ones."""
    _load_builtin()
    if kind not in _REGISTRY:
        raise UnknownNameError("executor", kind, _REGISTRY, source=source)
    return _REGISTRY[kind]


def make_executor(
    kind: str, site_id: str, options: Mapping[str, Any], home: Path, *, source: str = "executor"
) -> Any:
    """Build the executor of ``site_id`` from its kind and its options table."""
    return executor_class(kind, source=source)(site_id, dict(options), Path(home))


def _load_builtin() -> None:
    # Importing the package imports each built-in module, whose decorator registers it.
    import computenet.executors  # noqa: F401
