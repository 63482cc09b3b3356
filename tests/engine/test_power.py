"""Energy from a measured accelerator: the power model (``model.job_power_kw``) replays the
phases of the H100 measurement in ../shared/data/measured within 5 % of each measured
energy, counts idle accelerators at their idle floor, and scales other types by board
power (labelled as scaled)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from enginekit import job, network, request, site

from computenet.engine import plan
from computenet.model import AcceleratorType, accelerator_power_w, job_power_kw
from netkit import A100, H100

# Each measured phase as the model sees it: kind of work and share of the time busy.
PHASES = {
    "idle": ("training", 0.0),
    "matmul_duty_100": ("other", 1.0),
    "matmul_duty_75": ("other", 0.75),
    "matmul_duty_50": ("other", 0.5),
    "matmul_duty_25": ("other", 0.25),
    "train_transformer": ("training", 1.0),
    "decode_memory_bound": ("inference", 1.0),
}


def test_the_model_replays_the_h100_measurement_within_5_percent(shared_data: Path) -> None:
    doc = json.loads((shared_data / "measured" / "h100_power_profile.json").read_text())
    assert doc["device"].startswith("NVIDIA H100")
    assert set(PHASES) <= set(doc["phases"])
    for name, (kind, busy) in PHASES.items():
        ph = doc["phases"][name]
        measured_j = ph["power_w_mean"] * ph["seconds"]
        # One accelerator, no host power: energy (kWh) over the phase, back to joules.
        model_j = job_power_kw(H100, kind, busy, 1, 0.0) * ph["seconds"] * 3.6e6 / 3600
        assert model_j == pytest.approx(measured_j, rel=0.05), name


def test_board_power_is_not_limit_times_utilisation() -> None:
    # The old formula gave 700 W x 0.5 = 350 W for half the work; the board draws ~70 %.
    half = accelerator_power_w(H100, "other", 0.5)
    full = accelerator_power_w(H100, "other", 1.0)
    assert 0.65 < half / full < 0.75
    assert accelerator_power_w(H100, "training", 1.0) > accelerator_power_w(H100, "inference", 1.0)
    assert accelerator_power_w(H100, "training", 0.0) == pytest.approx(76.1)


def test_other_types_are_scaled_from_the_h100_by_board_power() -> None:
    p = A100.profile()
    assert p.scaled and "scaled" in p.source and not H100.profile().scaled
    assert p.idle_w == pytest.approx(76.1 * 400 / 700)
    assert p.busy_w["training"] == pytest.approx(675.1 * 400 / 700)
    own = AcceleratorType("X", "v", 100.0, 16.0, 300.0, power_profile=H100.profile())
    assert own.profile() is H100.profile()


def test_a_job_carries_its_kind_of_work_into_the_plan() -> None:
    net = network(site("a", {"H100": 4}), accelerators=(A100, H100))
    train = job("t", 2.0, 2)
    infer = job("i", 2.0, 2)
    from dataclasses import replace

    infer = replace(infer, work_kind="inference", id="i")
    rep = plan(request(net, [train, infer]))
    e = {p.job_id: p.breakdown.energy_kwh for p in rep.placements}
    assert e["i"] < e["t"]
    bad = replace(train, work_kind="gaming", id="g")
    rep = plan(request(net, [bad]))
    assert [(i.job_id, i.constraint) for i in rep.infeasible] == [("g", "work")]
    assert "training" in rep.infeasible[0].reason
