"""``computenet measure``: measure the local accelerator and write a certificate a provider
submits for its pool (``computenet.market.certificate`` documents the format)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from computenet.cli.app import app
from computenet.cli.checks import writable


class DeviceChoice(StrEnum):
    AUTO = "auto"
    GPU = "gpu"
    CPU = "cpu"


@app.command()
def measure(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the certificate (JSON).")
    ] = Path("certificate.json"),
    device: Annotated[
        DeviceChoice,
        typer.Option(
            help="auto: the GPU when there is one, else say so and stop; gpu: a GPU or an "
            "error; cpu: a self-test of the pipeline on the CPU (its certificate cannot be "
            "submitted for a pool)."
        ),
    ] = DeviceChoice.AUTO,
    gpu: Annotated[int, typer.Option(help="Index of the GPU to measure.", min=0)] = 0,
    seconds: Annotated[
        float,
        typer.Option(
            help="Seconds of sustained matrix products (idle 5 s and copy 5 s come on top).",
            min=0.1,
        ),
    ] = 20.0,
    verify: Annotated[
        Path | None,
        typer.Option(
            help="Check an existing certificate (format, figures, hash) instead of measuring."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the certificate as JSON.")] = False,
) -> None:
    """Measure dense BF16 matrix throughput, memory bandwidth and board power (NVML) of the
    local accelerator, and write a measurement certificate with a hash of its content."""
    from computenet.market import measure as m

    if verify is not None:
        _verify(verify, as_json)
        return
    writable(out, "--out")
    plan = m.Plan(idle_s=min(5.0, seconds / 4), matmul_s=seconds, copy_s=min(5.0, seconds / 4))
    try:
        if device is DeviceChoice.CPU:
            body = _with_progress(lambda p: m.measure_cpu(plan, p), plan, as_json)
        else:
            m.find_gpu(gpu)  # says why not before any progress bar is drawn
            body = _with_progress(lambda p: m.measure_gpu(gpu, plan, p), plan, as_json)
    except m.NoAccelerator as exc:
        typer.echo(
            f"no accelerator to measure: {exc}. Nothing was measured "
            "(--device cpu runs a self-test of the pipeline on the CPU).",
            err=True,
        )
        raise typer.Exit(0 if device is DeviceChoice.AUTO else 1) from None
    out.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        _print_summary(body, out)


def _with_progress(run: Any, plan: Any, quiet: bool) -> dict[str, Any]:
    if quiet:
        return dict(run(lambda phase, done: None))
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description:<8}"), BarColumn(), TimeRemainingColumn(), transient=True
    ) as bar:
        task = bar.add_task("idle", total=plan.total_s)

        def progress(phase: str, done: float) -> None:
            bar.update(task, description=phase, completed=done * plan.total_s)

        return dict(run(progress))


def _print_summary(body: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from computenet.catalog.accelerators import KNOWN_ACCELERATORS
    from computenet.market.units import UNIT_NAME

    f, dev = body["figures"], body["device"]
    table = Table(title=Text(f"{dev['name']} ({dev['backend']})"), title_justify="left")
    table.add_column("figure")
    table.add_column("measured", justify="right")
    table.add_column("published spec", justify="right")
    acc = KNOWN_ACCELERATORS.get(body.get("accelerator") or "")
    spec = acc.tflops_bf16 if acc is not None else None
    dtype = body["method"]["dtype"]
    share = f" ({f['matmul_tflops'] / spec:.0%})" if spec else ""
    table.add_row(f"dense {dtype} matrix TFLOP/s", f"{f['matmul_tflops']:g}{share}", _or(spec))
    table.add_row("memory GB/s (copy, read + write)", f"{f['memory_gbps']:g}", "")
    table.add_row("board power loaded W", _or(f.get("power_loaded_w")), _or(acc and acc.power_w))
    table.add_row("board power idle W", _or(f.get("power_idle_w")), "")
    if dev["kind"] == "gpu":
        table.add_row(
            f"{UNIT_NAME}s per accelerator-hour",
            f"{f['matmul_tflops'] / 1000:.3f}",
            _or(spec and round(spec / 1000, 3)),
        )
    console = Console()
    console.print(table)
    console.print(
        Text(f"certificate {body['sha256'][:16]} written to {out} ({body['duration_s']} s)")
    )
    if dev["kind"] != "gpu":
        console.print(
            Text("a CPU self-test: it checks the pipeline, it cannot be submitted for a pool")
        )


def _or(value: Any) -> str:
    return (
        "-"
        if value is None or value == ""
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


def _verify(path: Path, as_json: bool) -> None:
    from computenet.market.certificate import parse
    from computenet.textfile import read_text

    cert = parse(read_text(path), source=str(path))
    summary = {
        "id": cert.id,
        "device": cert.device_name,
        "accelerator": cert.accelerator,
        "dtype": cert.dtype,
        "matmul_tflops": cert.matmul_tflops,
        "valid": True,
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"{path}: valid certificate {cert.id} for {cert.device_name} "
            f"({cert.matmul_tflops:g} TFLOP/s {cert.dtype})"
        )
