"""``computenet measure``'s measurement: a standard, repeatable load on one local device.

Phases, in order (each sampled for board power through NVML every 50 ms on a GPU, the
first second of a loaded phase not counted while clocks settle):

1. **idle**: the device allocated, nothing running (``power_idle_w``);
2. **matmul**: dense ``N x N`` matrix products in BF16 on a GPU (``N = 8192``), float32
   on the CPU self-test, back to back for the phase's seconds (``matmul_tflops``,
   ``power_loaded_w``);
3. **copy**: device-to-device copies of a 1 GiB buffer, counted as bytes read plus written
   (``memory_gbps``).

The CPU self-test (``--device cpu``) runs the same phases with NumPy so the pipeline and
the certificate can be checked on a machine without an accelerator; its certificate says
``kind: cpu`` and ``dtype: float32`` and cannot be submitted for a pool.

Heavy libraries (torch, NVML) are imported only here and only when measuring a GPU.
"""

from __future__ import annotations

import datetime as dt
import platform
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from computenet.market.certificate import accelerator_for_device, seal

MATMUL_N_GPU = 8192
MATMUL_N_CPU = 1024
COPY_BYTES_GPU = 1 << 30
COPY_BYTES_CPU = 1 << 26
SETTLE_S = 1.0

Progress = Callable[[str, float], None]
"""Called with a phase name and the fraction of the whole measurement done."""


class NoAccelerator(Exception):
    """No accelerator to measure here; the message says why (no torch, no CUDA, no NVML)."""


@dataclass(frozen=True)
class Plan:
    """How long each phase runs, in seconds."""

    idle_s: float = 5.0
    matmul_s: float = 20.0
    copy_s: float = 5.0

    @property
    def total_s(self) -> float:
        return self.idle_s + self.matmul_s + self.copy_s


@dataclass
class PowerSampler:
    """Board power of one GPU sampled every 50 ms on a thread while a phase runs."""

    read_w: Callable[[], float]
    period_s: float = 0.05
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PowerSampler:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self.read_w()))
            time.sleep(self.period_s)

    def mean_w(self, after_s: float) -> float | None:
        """Mean power of the samples taken at or after ``after_s`` (perf_counter)."""
        values = [w for t, w in self.samples if t >= after_s] or [w for _, w in self.samples]
        return round(statistics.fmean(values), 1) if values else None


def _no_power() -> float:
    return 0.0


def _timed_loop(
    step: Callable[[], object], sync: Callable[[], None], seconds: float
) -> tuple[int, float]:
    """Run ``step`` until ``seconds`` have passed; how many times, and the exact seconds."""
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(4):
            step()
        n += 4
        sync()
    return n, time.perf_counter() - t0


def find_gpu(index: int = 0) -> tuple[Any, Any]:
    """``(torch, nvml_handle_or_None)`` for GPU ``index``; ``NoAccelerator`` says why not."""
    try:
        import torch
    except ImportError:
        raise NoAccelerator(
            "PyTorch is not installed, so no accelerator can be measured "
            "(on a GPU machine: pip install 'computenet[measure]')"
        ) from None
    if not torch.cuda.is_available():
        raise NoAccelerator(f"no CUDA device is visible to PyTorch {torch.__version__}")
    if index >= torch.cuda.device_count():
        raise NoAccelerator(
            f"GPU {index} does not exist: {torch.cuda.device_count()} device(s) visible"
        )
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # NVML missing or refusing: measure throughput, not power
        handle = None
    return torch, handle


def measure_gpu(index: int, plan: Plan, progress: Progress) -> dict[str, Any]:
    """Measure GPU ``index``; returns a sealed certificate body."""
    torch, handle = find_gpu(index)
    dev = torch.device(f"cuda:{index}")
    read_w: Callable[[], float] = _no_power
    device: dict[str, Any] = {
        "name": torch.cuda.get_device_name(index),
        "kind": "gpu",
        "index": index,
        "backend": f"torch {torch.__version__} cuda {torch.version.cuda}",
        "memory_gb": round(torch.cuda.get_device_properties(index).total_memory / 1e9, 1),
    }
    figures: dict[str, Any] = {"power_limit_w": None, "power_idle_w": None}
    if handle is not None:
        import pynvml

        def read_w() -> float:
            return float(pynvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0

        device["uuid"] = _text(pynvml.nvmlDeviceGetUUID(handle))
        device["driver"] = _text(pynvml.nvmlSystemGetDriverVersion())
        figures["power_limit_w"] = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
    started = time.perf_counter()

    progress("idle", 0.0)
    torch.cuda.set_device(index)
    with PowerSampler(read_w) as idle:
        time.sleep(plan.idle_s)
    figures["power_idle_w"] = idle.mean_w(0.0) if handle is not None else None

    progress("matmul", plan.idle_s / plan.total_s)
    figures.update(_gpu_matmul(torch, dev, plan, read_w if handle is not None else None))
    progress("copy", (plan.idle_s + plan.matmul_s) / plan.total_s)
    figures["memory_gbps"] = _gpu_copy(torch, dev, plan)
    torch.cuda.empty_cache()
    progress("done", 1.0)

    method = _method(
        "bfloat16", MATMUL_N_GPU, COPY_BYTES_GPU, plan, "torch.matmul, Tensor.copy_, NVML"
    )
    return _body(device, figures, method, time.perf_counter() - started)


def _gpu_matmul(
    torch: Any, dev: Any, plan: Plan, read_w: Callable[[], float] | None
) -> dict[str, Any]:
    """Sustained BF16 ``N x N`` products: TFLOP/s and the board power while loaded."""
    n = MATMUL_N_GPU
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    for _ in range(3):  # warm-up: kernels chosen, clocks up
        a @ b
    torch.cuda.synchronize(dev)
    with PowerSampler(read_w or _no_power) as loaded:
        settle = time.perf_counter() + SETTLE_S
        count, seconds = _timed_loop(
            lambda: a @ b, lambda: torch.cuda.synchronize(dev), plan.matmul_s
        )
    return {
        "matmul_tflops": round(count * 2 * n**3 / seconds / 1e12, 1),
        "power_loaded_w": loaded.mean_w(settle) if read_w is not None else None,
    }


def _gpu_copy(torch: Any, dev: Any, plan: Plan) -> float:
    """Device-to-device copies of a 1 GiB buffer: GB/s read plus written."""
    src = torch.empty(COPY_BYTES_GPU, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    copies, seconds = _timed_loop(
        lambda: dst.copy_(src), lambda: torch.cuda.synchronize(dev), plan.copy_s
    )
    return round(copies * 2 * COPY_BYTES_GPU / seconds / 1e9, 1)


def measure_cpu(plan: Plan, progress: Progress) -> dict[str, Any]:
    """The CPU self-test: the same phases with NumPy float32; no power figures."""
    import numpy as np

    started = time.perf_counter()
    progress("idle", 0.0)
    time.sleep(plan.idle_s)
    progress("matmul", plan.idle_s / plan.total_s)
    n = MATMUL_N_CPU
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    count, seconds = _timed_loop(lambda: a @ b, lambda: None, plan.matmul_s)
    progress("copy", (plan.idle_s + plan.matmul_s) / plan.total_s)
    src = np.ones(COPY_BYTES_CPU, dtype=np.uint8)
    dst = np.empty_like(src)
    copies, copy_s = _timed_loop(lambda: np.copyto(dst, src), lambda: None, plan.copy_s)
    progress("done", 1.0)
    device = {
        "name": platform.processor() or platform.machine(),
        "kind": "cpu",
        "index": 0,
        "backend": f"numpy {np.__version__}",
    }
    figures = {
        "matmul_tflops": round(count * 2 * n**3 / seconds / 1e12, 4),
        "memory_gbps": round(copies * 2 * COPY_BYTES_CPU / copy_s / 1e9, 2),
        "power_loaded_w": None,
        "power_idle_w": None,
        "power_limit_w": None,
    }
    method = _method("float32", n, COPY_BYTES_CPU, plan, "numpy matmul and copyto (self-test)")
    return _body(device, figures, method, time.perf_counter() - started)


def _method(dtype: str, n: int, copy_bytes: int, plan: Plan, tools: str) -> dict[str, Any]:
    return {
        "dtype": dtype,
        "matmul_n": n,
        "copy_bytes": copy_bytes,
        "idle_s": plan.idle_s,
        "matmul_s": plan.matmul_s,
        "copy_s": plan.copy_s,
        "power_sample_s": 0.05,
        "settle_s": SETTLE_S,
        "tools": tools,
    }


def _body(
    device: dict[str, Any], figures: dict[str, Any], method: dict[str, Any], seconds: float
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return seal(
        {
            "device": device,
            "accelerator": accelerator_for_device(str(device["name"])),
            "figures": figures,
            "method": method,
            "duration_s": round(seconds, 1),
            "measured_at": now.isoformat().replace("+00:00", "Z"),
            "host": socket.gethostname(),
        }
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
