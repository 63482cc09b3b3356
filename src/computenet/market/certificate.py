"""Measurement certificates: what ``computenet measure`` writes and a provider submits.

A certificate is one JSON object (format ``computenet-measurement/1``)::

    {
      "format": "computenet-measurement/1",
      "device": {"name": "NVIDIA H100 80GB HBM3", "kind": "gpu", "index": 0,
                 "uuid": "GPU-...", "driver": "580.82", "backend": "torch 2.11.0+cu128",
                 "memory_gb": 79.6},
      "accelerator": "H100",              # catalog type the device name matched, or null
      "figures": {"matmul_tflops": 681.2, # sustained dense matrix product in method.dtype
                  "memory_gbps": 2671.0,  # device-to-device copy, read + write
                  "power_loaded_w": 698.0, "power_idle_w": 76.0,   # NVML board power
                  "power_limit_w": 700.0},
      "method": {"dtype": "bfloat16", ...},  # matrix size, seconds per phase, bytes copied
      "duration_s": 41.3, "measured_at": "2026-11-26T12:00:00Z", "host": "node-7",
      "sha256": "<hex>"                   # of the canonical JSON of every other field
    }

``sha256`` is the SHA-256 of the object without its ``sha256`` field, serialised with
sorted keys, no spaces and UTF-8 (``canonical_bytes``): anyone can recompute it, so an
edited figure is detected. It is a content hash, not a signature: it does not prove who
measured (a platform that needs that signs the file with its own key).

Pure: parsing, hashing and checking only. The measurement itself is in ``market.measure``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from computenet.errors import InputError
from computenet.market.units import Throughput, measured_throughput

FORMAT = "computenet-measurement/1"
FIGURES = ("matmul_tflops", "memory_gbps", "power_loaded_w", "power_idle_w", "power_limit_w")
UNIT_DTYPES = ("bfloat16", "float16")
REQUIRED = ("format", "device", "figures", "method", "duration_s", "measured_at", "sha256")

# Device names as NVML/CUDA report them -> catalog accelerator ids. Order matters: the
# first pattern that matches wins (an "H100" inside "GH100" is not an H20).
_DEVICE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"\bH100\b", "H100"),
    (r"\bH20\b", "H20"),
    (r"\bA100\b", "A100"),
    (r"\bL20\b", "L20"),
    (r"910B", "Ascend910B"),
    (r"MLU370", "MLU370"),
)


def accelerator_for_device(name: str) -> str | None:
    """The catalog accelerator id a device name stands for, or None."""
    for pattern, acc_id in _DEVICE_PATTERNS:
        if re.search(pattern, name):
            return acc_id
    return None


def canonical_bytes(body: Mapping[str, Any]) -> bytes:
    """The bytes the hash is taken over: every field but ``sha256``, keys sorted."""
    content = {k: v for k, v in body.items() if k != "sha256"}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def seal(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with its ``sha256`` field set."""
    sealed = {k: v for k, v in body.items() if k != "sha256"}
    sealed["format"] = FORMAT
    sealed["sha256"] = content_hash(sealed)
    return sealed


@dataclass(frozen=True)
class Certificate:
    """A checked certificate. ``id`` is the first 16 hex digits of its hash."""

    body: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.body["sha256"])[:16]

    @property
    def device_name(self) -> str:
        return str(self.body["device"].get("name", "unknown device"))

    @property
    def accelerator(self) -> str | None:
        acc = self.body.get("accelerator")
        return str(acc) if acc else None

    @property
    def dtype(self) -> str:
        return str(self.body["method"].get("dtype", ""))

    @property
    def matmul_tflops(self) -> float:
        return float(self.body["figures"]["matmul_tflops"])

    def throughput(self) -> Throughput:
        """The measured throughput a pool that submits this certificate sells at. Only a
        BF16/FP16 measurement on an accelerator counts: a CPU self-test does not."""
        if self.body["device"].get("kind") != "gpu" or self.dtype not in UNIT_DTYPES:
            raise InputError(
                f"measured {self.dtype or 'an unknown type'} on a "
                f"{self.body['device'].get('kind', 'unknown')} device, not BF16/FP16 on an "
                "accelerator",
                source=f"certificate {self.id}",
                where="method.dtype",
                fix="submit a certificate measured on the pool's accelerator",
            )
        return measured_throughput(self.matmul_tflops, self.id, self.device_name)


def parse(text: str | bytes, source: str = "certificate") -> Certificate:
    """Read and check a certificate: its format, its fields and its hash."""
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"not a JSON certificate ({exc})",
            source=source,
            fix="submit the file `computenet measure --out FILE` wrote, unchanged",
        ) from None
    return check(body, source)


def check(body: Any, source: str = "certificate") -> Certificate:
    """Check a decoded certificate; the error names the field and the fix."""
    if not isinstance(body, dict):
        raise InputError("is not a JSON object", source=source, fix="submit the file unchanged")
    missing = [k for k in REQUIRED if k not in body]
    if missing:
        raise InputError(
            f"missing field(s) {', '.join(missing)}",
            source=source,
            fix="submit the whole file `computenet measure --out FILE` wrote",
        )
    if body["format"] != FORMAT:
        raise InputError(
            f"format {body['format']!r} is not {FORMAT!r}",
            source=source,
            where="format",
            fix="measure again with this version of computenet",
        )
    if not all(isinstance(body[k], dict) for k in ("device", "figures", "method")):
        raise InputError(
            "device, figures and method must be objects",
            source=source,
            fix="submit the file unchanged",
        )
    _check_figures(body["figures"], source)
    expected = content_hash(body)
    if body["sha256"] != expected:
        raise InputError(
            "the content does not match its sha256 (the file was edited after measuring)",
            source=source,
            where="sha256",
            fix="submit the file exactly as `computenet measure` wrote it, or measure again",
        )
    return Certificate(body)


def _check_figures(figures: Mapping[str, Any], source: str) -> None:
    for name in FIGURES:
        value = figures.get(name)
        if value is None and name != "matmul_tflops":
            continue  # power figures are absent where NVML is not available
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0:  # type: ignore[arg-type,operator]
            raise InputError(
                f"{value!r} is not a measured figure",
                source=source,
                where=f"figures.{name}",
                fix="a finite number, 0 or more, as `computenet measure` writes it",
            )
    if float(figures["matmul_tflops"]) <= 0:
        raise InputError(
            "a throughput of 0",
            source=source,
            where="figures.matmul_tflops",
            fix="measure again on a working accelerator",
        )
