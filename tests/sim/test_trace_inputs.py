"""Trace files as a new user brings them (issue 11): units, encodings, stray fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from computenet.errors import TraceFileError
from computenet.sim.traces import load_gaia, load_trace


def gaia_in_hours(tmp_path: Path, n: int = 2000) -> Path:
    """Like GAIA's 100k-job traces: arrivals over a year, in hours; lengths in hours."""
    rng = np.random.default_rng(0)
    arrivals = np.sort(rng.uniform(0, 8760, n))
    lengths = rng.lognormal(0.0, 1.0, n)
    p = tmp_path / "gaia_hours.csv"
    rows = ["arrival_time,length,cpus"]
    rows += [
        f"{a:.3f},{ln:.3f},{1 + i % 4}"
        for i, (a, ln) in enumerate(zip(arrivals, lengths, strict=True))
    ]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return p


def test_gaia_hours_read_as_seconds_says_which_flag_to_try(tmp_path: Path) -> None:
    path = gaia_in_hours(tmp_path)
    with pytest.raises(TraceFileError) as e:
        load_gaia(path)
    text = str(e.value)
    assert "--time-unit h" in text and "gaia_hours.csv" in text
    assert "within a day" in text or "shorter than" in text
    tr = load_gaia(path, time_unit="h")
    assert tr.span_s > 300 * 86400


def test_gaia_in_seconds_reads_without_complaint(shared_data: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    p = tmp_path / "gaia_s.csv"
    rows = ["arrival_time,length,cpus"]
    rows += [
        f"{int(t)},{int(rng.uniform(600, 86400))},1"
        for t in np.sort(rng.uniform(0, 30 * 86400, 3000))
    ]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert len(load_gaia(p).jobs) == 3000
    with pytest.raises(TraceFileError, match="--time-unit s"):
        load_gaia(p, time_unit="h")


def test_generic_csv_in_hours_is_caught(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    rows = ["arrival_s,duration_s,accelerators"] + [f"{i % 24},{1 + i % 5},1" for i in range(12000)]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(TraceFileError, match="seconds"):
        load_trace(p, "csv")


@pytest.mark.parametrize("fmt", ["csv", "gaia", "philly", "openb", "helios"])
def test_non_utf8_bom_and_extra_fields(tmp_path: Path, fmt: str) -> None:
    header, row = {
        "csv": ("arrival_s,duration_s,accelerators", "0,3600,1"),
        "gaia": ("arrival_time,length,cpus", "0,3600,1"),
        "philly": ("runtime", "3600"),
        "openb": (
            "name,num_gpu,gpu_milli,pod_phase,creation_time,deletion_time,scheduled_time",
            "p1,1,1000,Succeeded,0,4000,10",
        ),
        "helios": ("time,submit_gpu_job,submit_gpu_num", "2020-04-01 00:00:00,1,2"),
    }[fmt]
    p = tmp_path / "t.csv"
    p.write_bytes(("\ufeff" + f"{header}\n{row}\n").encode("utf-8"))
    assert len(load_trace(p, fmt).jobs) == 1
    p.write_bytes(f"{header}\n{row}\n".encode() + b"\xff\xfe,1\n")
    with pytest.raises(TraceFileError, match=r"line 3.*UTF-8"):
        load_trace(p, fmt)
    p.write_bytes(f"{header}\n{row}\n{row},9\n".encode())
    with pytest.raises(TraceFileError, match=r"line 3.*more fields than the header"):
        load_trace(p, fmt)
    p.write_bytes(f"{header}\n{row}\n\x00\n".encode())
    with pytest.raises(TraceFileError, match=r"line 3"):
        load_trace(p, fmt)


def test_a_year_of_hours_squeezed_into_hours_is_caught(tmp_path: Path) -> None:
    """GAIA's 100k-job traces: read in seconds, a year of arrivals lands within 2.4 hours."""
    rng = np.random.default_rng(2)
    p = tmp_path / "gaia_year.csv"
    arrivals = np.sort(rng.uniform(0, 8760, 20_000))
    rows = ["arrival_time,length,cpus"] + [
        f"{a:.4f},{int(rng.integers(60, 600))},1" for a in arrivals
    ]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(TraceFileError, match="20,000 of its 20,000 jobs arrive within one day"):
        load_gaia(p)
    assert len(load_gaia(p, unit_check=False).jobs) == 20_000


def test_a_run_or_a_span_too_long_to_simulate_is_refused(tmp_path: Path) -> None:
    """Found by the property test: one GAIA job of 747 years made the simulator's bound
    ask for a (38, 2**27) array (a MemoryError traceback); now the loader says why."""
    p = tmp_path / "long.csv"
    p.write_text("arrival_time,length,cpus\n0,23580064387,1\n", encoding="utf-8")
    with pytest.raises(TraceFileError, match="runs 272,917 days, more than a year"):
        load_gaia(p, unit_check=False)
    p.write_text("arrival_time,length,cpus\n0,60,1\n946080000,60,1\n", encoding="utf-8")
    with pytest.raises(TraceFileError, match="arrivals span 30 years"):
        load_gaia(p, unit_check=False)


def test_generic_csv_work_kind_reaches_the_jobs_and_bad_ones_are_named(tmp_path: Path) -> None:
    """Issue 11: a trace's optional ``work_kind`` column flows to the jobs (and so to their
    power, ``model.job_power_kw``); a bad one names the line and the allowed values."""
    from computenet.catalog import load_network
    from computenet.model import WorkKind
    from computenet.sim.workload import FillOptions, materialise

    p = tmp_path / "t.csv"
    p.write_text(
        "id,arrival_s,duration_s,accelerators,work_kind\n"
        "a,0,3600,1,inference\nb,60,3600,1,\nc,120,3600,1,OTHER\n"
    )
    tr = load_trace(p, "csv")
    assert [j.work_kind for j in tr.jobs] == ["inference", None, "other"]
    wl = materialise(tr, load_network("china"), 1_688_342_400, FillOptions(seed=0))
    kinds = {j.id: j.work_kind for j in wl.jobs}
    assert kinds == {"a": WorkKind.INFERENCE, "b": WorkKind.TRAINING, "c": WorkKind.OTHER}
    p.write_text("id,arrival_s,duration_s,accelerators,work_kind\na,0,3600,1,serving\n")
    with pytest.raises(TraceFileError) as err:
        load_trace(p, "csv")
    text = str(err.value)
    assert "line 2" in text and "serving" in text and "training, inference, other" in text
