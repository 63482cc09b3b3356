"""Compute units that mean the same on every pool.

One **compute unit** is one hour of one PFLOP/s of dense BF16/FP16 matrix throughput (a
*PFLOP-hour*, the way China's platforms count AI compute in FP16 EFLOPS). A pool converts
accelerator-hours into units through its accelerator's throughput: **measured** where the
provider submitted a measurement certificate for the pool (``market.certificate``), else
the **published spec** of the accelerator type, and every figure says which.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from computenet.errors import InputError
from computenet.model import AcceleratorType

UNIT_NAME = "PFLOP-hour"
UNIT_DEFINITION = "one hour of 1 PFLOP/s of dense BF16/FP16 matrix throughput"

Basis = Literal["measured", "spec"]


@dataclass(frozen=True)
class Throughput:
    """Dense BF16/FP16 throughput of one accelerator, and where the figure comes from."""

    tflops_bf16: float
    basis: Basis
    source: str

    @property
    def units_per_hour(self) -> float:
        """Compute units one accelerator delivers in one hour at this throughput."""
        return self.tflops_bf16 / 1000.0


def spec_throughput(acc: AcceleratorType) -> Throughput:
    """The published dense BF16/FP16 figure of an accelerator type."""
    if not math.isfinite(acc.tflops_bf16) or acc.tflops_bf16 <= 0:
        raise InputError(
            f"{acc.tflops_bf16} is not a throughput",
            source=f"accelerator {acc.id}",
            where="tflops_bf16",
            fix="give the published dense BF16/FP16 TFLOPS, a positive number",
        )
    return Throughput(acc.tflops_bf16, "spec", acc.source or f"published spec of {acc.id}")


def measured_throughput(tflops_bf16: float, certificate_id: str, device: str) -> Throughput:
    """A throughput measured by ``computenet measure`` and recorded in a certificate."""
    if not math.isfinite(tflops_bf16) or tflops_bf16 <= 0:
        raise InputError(
            f"{tflops_bf16} is not a measured throughput",
            source=f"certificate {certificate_id}",
            where="figures.matmul_tflops",
            fix="run `computenet measure` again on the accelerator",
        )
    return Throughput(
        tflops_bf16, "measured", f"measured on {device} (certificate {certificate_id})"
    )


def pool_throughput(acc: AcceleratorType, measured: Throughput | None = None) -> Throughput:
    """The throughput a pool sells at: its measurement where one exists, else the spec."""
    return measured if measured is not None else spec_throughput(acc)


def units(accelerators: int, hours: float, throughput: Throughput) -> float:
    """Compute units of ``accelerators`` busy for ``hours`` at ``throughput``."""
    if accelerators < 0 or not math.isfinite(hours) or hours < 0:
        raise InputError(
            f"{accelerators} accelerators for {hours} h",
            where="units",
            fix="give a count of 0 or more and a finite number of hours, 0 or more",
        )
    return accelerators * hours * throughput.units_per_hour


def accelerator_hours(compute_units: float, throughput: Throughput) -> float:
    """Accelerator-hours a number of compute units takes on one pool."""
    if not math.isfinite(compute_units) or compute_units < 0:
        raise InputError(
            f"{compute_units} is not a number of compute units",
            where="units",
            fix=f"give a finite number of {UNIT_NAME}s, 0 or more",
        )
    return compute_units / throughput.units_per_hour
