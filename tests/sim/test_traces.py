"""Trace loaders, checked against rows read straight from the public files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from computenet.errors import TraceFileError, UnknownNameError
from computenet.sim.traces import (
    HELIOS_VENUS_MEDIAN_RUN_S,
    MIN_DURATION_S,
    load_csv,
    load_gaia,
    load_helios,
    load_openb,
    load_philly,
    load_trace,
)
from computenet.sim.workload import FillOptions, demo_trace, materialise


@pytest.fixture(scope="module")
def traces(shared_data: Path) -> Path:
    return shared_data / "gpu_traces"


def test_openb_matches_file_rows(traces: Path) -> None:
    path = traces / "alibaba_v2023_openb_pod_list_default.csv"
    rows = list(csv.DictReader(path.open()))
    tr = load_openb(path)
    by_id = {j.id: j for j in tr.jobs}
    gpu_sched = [r for r in rows if int(r["num_gpu"]) > 0 and r["scheduled_time"]]
    assert len(tr.jobs) == len(gpu_sched)
    end = max(int(r["deletion_time"]) for r in rows)
    for r in gpu_sched[::97]:
        j = by_id[r["name"]]
        assert j.arrival_s == int(r["creation_time"])
        run = int(r["deletion_time"]) - int(r["scheduled_time"])
        assert j.duration_s == max(MIN_DURATION_S, run)
        assert j.accelerators == int(r["num_gpu"])
        assert j.cut_off == (int(r["deletion_time"]) >= end and r["pod_phase"] == "Running")
    assert tr.cut_off_jobs == sum(
        1 for r in gpu_sched if int(r["deletion_time"]) >= end and r["pod_phase"] == "Running"
    )
    assert tr.cut_off_jobs > 0
    assert any("still running at the trace end" in n for n in tr.notes)
    dropped = load_openb(path, cutoff="drop")
    assert len(dropped.jobs) == len(tr.jobs) - tr.cut_off_jobs
    # a shared GPU draws its share of power
    shared = next(r for r in gpu_sched if r["num_gpu"] == "1" and int(r["gpu_milli"]) < 1000)
    assert by_id[shared["name"]].utilisation == pytest.approx(int(shared["gpu_milli"]) / 1000)


def test_philly_keeps_every_runtime_and_fills_arrivals(traces: Path) -> None:
    path = traces / "alibaba_v2020_analysis_philly_runtime.csv"
    runtimes = [float(r["runtime"]) for r in csv.DictReader(path.open())]
    tr = load_philly(path, seed=3, arrival_rate_per_h=120)
    assert len(tr.jobs) == len(runtimes)
    assert sorted(j.duration_s for j in tr.jobs) == sorted(
        max(MIN_DURATION_S, int(r)) for r in runtimes
    )
    span_h = tr.span_s / 3600
    assert len(runtimes) / span_h == pytest.approx(120, rel=0.05)
    assert tr.filled_by_loader and "Poisson" in tr.filled_by_loader[0]
    assert load_philly(path, seed=3, arrival_rate_per_h=120) == tr


def test_helios_counts_match_the_ten_minute_rows(traces: Path, tmp_path: Path) -> None:
    path = traces / "helios_venus_cluster_throughput_10min.csv"
    rows = list(csv.DictReader(path.open()))[:2000]
    tmp = tmp_path / "helios_head.csv"
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tr = load_helios(tmp, seed=1)
    assert len(tr.jobs) == sum(int(r["submit_gpu_job"]) for r in rows)
    # GPUs per interval are preserved (each job at least one)
    by_bin: dict[int, int] = {}
    for j in tr.jobs:
        by_bin[j.arrival_s // 600] = by_bin.get(j.arrival_s // 600, 0) + j.accelerators
    for k, r in enumerate(rows):
        n, g = int(r["submit_gpu_job"]), int(r["submit_gpu_num"])
        if n:
            assert by_bin[k] == max(g, n)
    med = sorted(j.duration_s for j in tr.jobs)[len(tr.jobs) // 2]
    assert 0.5 * HELIOS_VENUS_MEDIAN_RUN_S < med < 2 * HELIOS_VENUS_MEDIAN_RUN_S


def test_gaia_and_generic_csv(tmp_path: Path) -> None:
    g = tmp_path / "gaia.csv"
    g.write_text("arrival_time,length,cpus\n0.0,6302.0,1\n68.0,1000.0,3\n")
    tr = load_gaia(g)
    assert [(j.arrival_s, j.duration_s, j.accelerators) for j in tr.jobs] == [
        (0, 6302, 1),
        (68, 1000, 3),
    ]
    # Read in hours, these run times (a median of 152 days) fail the unit check; forced:
    assert load_gaia(g, time_unit="h", unit_check=False).jobs[1].arrival_s == 68 * 3600
    c = tmp_path / "jobs.csv"
    c.write_text(
        "id,arrival_s,duration_s,accelerators,deadline_s,data_gb,classification,home_site,checkpointable\n"
        "x,10,3600,2,90000,12.5,core,A,true\n"
        "y,5,60,1,,,,,\n"
    )
    tr = load_csv(c)
    assert [j.id for j in tr.jobs] == ["y", "x"]
    x = tr.jobs[1]
    assert (x.deadline_s, x.data_gb, x.classification, x.home_site, x.checkpointable) == (
        90000,
        12.5,
        "core",
        "A",
        True,
    )
    assert tr.jobs[0].deadline_s is None and tr.jobs[0].checkpointable is None


def test_bad_trace_input_names_the_place(tmp_path: Path) -> None:
    c = tmp_path / "bad.csv"
    c.write_text("arrival_s,duration_s,accelerators\n0,abc,1\n")
    with pytest.raises(TraceFileError, match="line 2"):
        load_csv(c)
    with pytest.raises(TraceFileError, match="missing column"):
        load_openb(c)
    with pytest.raises(UnknownNameError, match="openb"):
        load_trace(c, "nope")
    with pytest.raises(TraceFileError, match="not found"):
        load_csv(tmp_path / "absent.csv")


def test_fill_is_seeded_and_says_what_it_filled() -> None:
    from simkit import network, site

    net = network(site("A", 8), site("B", 8))
    tr = demo_trace(days=1, jobs=50, seed=2)
    w1 = materialise(tr, net, 1_677_628_800, FillOptions(seed=5))
    w2 = materialise(tr, net, 1_677_628_800, FillOptions(seed=5))
    w3 = materialise(tr, net, 1_677_628_800, FillOptions(seed=6))
    assert w1 == w2 and w1.datasets != w3.datasets
    assert any("deadline: filled for 50 of 50" in f for f in w1.filled)
    for j in w1.jobs:
        assert j.deadline_s >= j.earliest_start_s + j.work_h * 3600
    sizes = [j.accelerators for j in demo_trace(days=7, jobs=4000, seed=0).jobs]
    assert sorted(sizes)[len(sizes) // 2] == 1
    assert 3.0 < sum(sizes) / len(sizes) < 4.5


def test_philly_arrival_order_does_not_follow_run_time(traces: Path) -> None:
    tr = load_philly(traces / "alibaba_v2020_analysis_philly_runtime.csv", seed=0)
    first = sorted(j.duration_s for j in tr.jobs[:2000])
    last = sorted(j.duration_s for j in tr.jobs[-2000:])
    # the file is sorted by run time; the replay must not be
    assert first[1000] < 4 * last[1000] and last[1000] < 4 * first[1000]


def test_helios_expansion_agrees_with_the_published_cluster_summary(traces: Path) -> None:
    tr = load_helios(traces / "helios_venus_cluster_throughput_10min.csv", seed=0)
    venus = next(
        r
        for r in csv.DictReader((traces / "helios_cluster_summary.csv").open())
        if r["id"] == "Venus"
    )
    # the 10-minute counts and the per-job summary are two views of the same cluster
    assert len(tr.jobs) == pytest.approx(int(venus["gpu_job_num"]), rel=0.01)
