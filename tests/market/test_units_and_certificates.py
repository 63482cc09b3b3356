"""Compute units convert the same through the spec and the certificate paths; certificates
are checked for format, figures and hash; `computenet measure` without an accelerator
says so and exits cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from computenet.catalog.accelerators import KNOWN_ACCELERATORS
from computenet.cli.main import app
from computenet.errors import InputError
from computenet.market import certificate as cert
from computenet.market.units import (
    accelerator_hours,
    measured_throughput,
    pool_throughput,
    spec_throughput,
    units,
)

H100 = KNOWN_ACCELERATORS["H100"]


def gpu_body(tflops: float, name: str = "NVIDIA H100 80GB HBM3") -> dict:
    return cert.seal(
        {
            "device": {"name": name, "kind": "gpu", "index": 0, "backend": "torch test"},
            "accelerator": cert.accelerator_for_device(name),
            "figures": {
                "matmul_tflops": tflops,
                "memory_gbps": 2671.0,
                "power_loaded_w": 698.0,
                "power_idle_w": 76.0,
                "power_limit_w": 700.0,
            },
            "method": {"dtype": "bfloat16", "matmul_n": 8192},
            "duration_s": 30.0,
            "measured_at": "2026-11-26T12:00:00Z",
            "host": "test",
        }
    )


def test_spec_unit_of_an_h100_is_0989_pflop_hours_per_hour() -> None:
    t = spec_throughput(H100)
    assert t.basis == "spec" and t.units_per_hour == pytest.approx(0.989)
    assert units(8, 10, t) == pytest.approx(79.12)


@given(
    acc_id=st.sampled_from(sorted(KNOWN_ACCELERATORS)),
    count=st.integers(0, 10_000),
    hours=st.floats(0, 1e5, allow_nan=False),
)
def test_spec_and_certificate_paths_agree_on_the_same_throughput(
    acc_id: str, count: int, hours: float
) -> None:
    acc = KNOWN_ACCELERATORS[acc_id]
    by_spec = pool_throughput(acc)
    certificate = cert.parse(json.dumps(gpu_body(acc.tflops_bf16)))
    by_certificate = pool_throughput(acc, certificate.throughput())
    assert by_certificate.basis == "measured" and by_spec.basis == "spec"
    assert units(count, hours, by_certificate) == pytest.approx(units(count, hours, by_spec))
    if by_spec.units_per_hour > 0 and count:
        u = units(count, hours, by_spec)
        assert accelerator_hours(u, by_spec) == pytest.approx(count * hours)


def test_a_measured_h100_sells_fewer_units_than_its_spec() -> None:
    """681 TFLOP/s sustained at the 700 W cap (../shared/data/measured) against 989 spec."""
    measured = cert.parse(json.dumps(gpu_body(681.0))).throughput()
    assert measured.units_per_hour / spec_throughput(H100).units_per_hour == pytest.approx(
        681 / 989
    )
    assert "measured on NVIDIA H100" in measured.source


def test_an_edited_figure_is_detected_by_the_hash() -> None:
    body = gpu_body(681.0)
    body["figures"]["matmul_tflops"] = 989.0
    with pytest.raises(InputError, match="sha256"):
        cert.parse(json.dumps(body))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda b: b["figures"].update(matmul_tflops=-1.0), "figures.matmul_tflops"),
        (lambda b: b["figures"].update(power_idle_w=float("inf")), "figures.power_idle_w"),
        (lambda b: b["figures"].update(memory_gbps="fast"), "figures.memory_gbps"),
        (lambda b: b.update(format="other/2"), "format"),
        (lambda b: b.pop("method"), "method"),
    ],
)
def test_bad_fields_are_named(edit, field: str) -> None:
    body = gpu_body(681.0)
    edit(body)
    body["sha256"] = cert.content_hash(body)  # a consistent hash: the field itself is wrong
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        cert.parse(json.dumps(body))


@pytest.mark.parametrize("text", [b"", b"\xff\xfe", b"[]", b"{", b'{"format": 1}'])
def test_garbage_is_one_clear_error(text: bytes) -> None:
    with pytest.raises(InputError):
        cert.parse(text)


def test_measured_throughput_must_be_positive() -> None:
    with pytest.raises(InputError, match="matmul_tflops"):
        measured_throughput(0.0, "abc", "dev")


def test_device_names_map_to_catalog_types() -> None:
    assert cert.accelerator_for_device("NVIDIA H100 80GB HBM3") == "H100"
    assert cert.accelerator_for_device("NVIDIA H20") == "H20"
    assert cert.accelerator_for_device("NVIDIA A100-SXM4-80GB") == "A100"
    assert cert.accelerator_for_device("NVIDIA GeForce RTX 4090") is None


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.skipif(_has_cuda(), reason="this machine has an accelerator to measure")
def test_measure_without_an_accelerator_says_so_and_exits_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    res = CliRunner().invoke(app, ["measure", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "no accelerator to measure" in res.output and "Nothing was measured" in res.output
    assert not out.exists()
    res = CliRunner().invoke(app, ["measure", "--device", "gpu", "--out", str(out)])
    assert res.exit_code == 1 and "no accelerator to measure" in res.output


def test_cpu_self_test_writes_a_certificate_that_verifies_but_sells_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "cpu.json"
    res = CliRunner().invoke(
        app, ["measure", "--device", "cpu", "--seconds", "0.2", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    body = json.loads(out.read_text())
    assert body["device"]["kind"] == "cpu" and body["method"]["dtype"] == "float32"
    assert body["figures"]["matmul_tflops"] > 0 and body["figures"]["memory_gbps"] > 0
    res = CliRunner().invoke(app, ["measure", "--verify", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["valid"] is True
    with pytest.raises(InputError, match="not BF16/FP16 on an accelerator"):
        cert.parse(out.read_text()).throughput()


def test_verify_refuses_an_edited_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    body = gpu_body(681.0)
    body["figures"]["matmul_tflops"] = 989.0
    path.write_text(json.dumps(body))
    res = CliRunner().invoke(app, ["measure", "--verify", str(path)])
    assert res.exit_code != 0
    assert "sha256" in str(res.exception) or "sha256" in res.output


def test_measure_refuses_an_output_in_a_missing_folder(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["measure", "--device", "cpu", "--out", str(tmp_path / "no" / "c.json")]
    )
    assert res.exit_code != 0
