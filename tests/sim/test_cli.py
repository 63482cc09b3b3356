"""``computenet simulate`` end to end (with the reference planner in place of the engine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from simkit import home_first_planner
from typer.testing import CliRunner

import computenet.engine
from computenet.cli.main import app

ZONES = "SG,JP-TK,DE-LU"


@pytest.fixture()
def zone_args(shared_data: Path) -> list[str]:
    return [
        "--zones",
        ZONES,
        "--carbon-dir",
        str(shared_data / "carbon/greendcc_ci_2023"),
        "--price-dir",
        str(shared_data / "price/greendcc_prices_2023_utc_usd"),
        "--capacity",
        "4",
    ]


@pytest.fixture()
def trace(tmp_path: Path) -> Path:
    p = tmp_path / "jobs.csv"
    rows = ["id,arrival_s,duration_s,accelerators,home_site,checkpointable"]
    for i in range(40):
        rows.append(
            f"j{i},{i * 900},{3600 + 600 * (i % 7)},{1 + i % 3},{ZONES.split(',')[i % 3]},{i % 2}"
        )
    p.write_text("\n".join(rows) + "\n")
    return p


def _run(args: list[str]) -> str:
    res = CliRunner().invoke(app, ["simulate", *args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_simulate_writes_json_and_report(monkeypatch, zone_args, trace, tmp_path) -> None:
    monkeypatch.setattr(computenet.engine, "plan", home_first_planner, raising=False)
    out_json, out_html = tmp_path / "o.json", tmp_path / "o.html"
    args = [
        "--trace",
        str(trace),
        "--trace-format",
        "csv",
        *zone_args,
        "--policy",
        "fifo-home,greedy",
        "--start",
        "2023-03-01",
        "--outage-rate",
        "0.5",
        "--sweep",
        "0,1000",
        "--no-bound",
        "--class-mix",
        "public=1",
        "--json",
        str(out_json),
        "--report",
        str(out_html),
    ]
    text = _run(args)
    assert "fifo-home" in text and "greedy" in text
    d = json.loads(out_json.read_text())
    assert [p["policy"] for p in d["policies"]] == ["fifo-home", "greedy"]
    assert all(p["jobs"] == 40 and p["violations"] == 0 for p in d["policies"])
    assert "outages" in " ".join(d["network_notes"])
    assert out_html.read_text().count("<svg") >= 4

    # same seed, same JSON (wall time and events/s are the only measured figures)
    first = d
    _run(args)
    second = json.loads(out_json.read_text())
    for doc in (first, second):
        for p in doc["policies"]:
            p.pop("wall_s")
            p.pop("events_per_s")
    assert first == second


def test_bad_input_is_one_line_and_exit_2(zone_args, tmp_path) -> None:
    missing = tmp_path / "absent.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "computenet.cli.main",
            "simulate",
            "--trace",
            str(missing),
            "--trace-format",
            "csv",
            *zone_args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "file not found" in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "computenet.cli.main",
            "simulate",
            "--trace",
            str(missing),
            "--trace-format",
            "nope",
            *zone_args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "openb" in proc.stderr


def test_same_seed_same_json_across_processes(zone_args, trace, tmp_path) -> None:
    """Python randomises string hashes per process; the replay must not depend on them."""
    import os

    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/..']; "
        "import computenet.engine, simkit; computenet.engine.plan = simkit.home_first_planner; "
        "from computenet.cli.main import main; sys.argv = ['computenet', *sys.argv[2:]]; main()"
    )
    docs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"o{hash_seed}.json"
        args = [
            "simulate",
            "--trace",
            str(trace),
            "--trace-format",
            "csv",
            *zone_args,
            "--policy",
            "fifo-home,greedy",
            "--outage-rate",
            "0.5",
            "--sweep",
            "",
            "--no-bound",
            "--json",
            str(out),
        ]
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, "-c", code, str(Path(__file__).parent), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        d = json.loads(out.read_text())
        for p in d["policies"]:
            p.pop("wall_s")
            p.pop("events_per_s")
        docs.append(d)
    assert docs[0] == docs[1]


def test_simulate_on_zones_of_your_own(monkeypatch, tmp_path) -> None:
    """Zones without built-in coordinates: files in the public layout, coordinates from
    --zone-coords where given, the default RTT elsewhere, and the output says so."""
    from test_zones import write_zone

    monkeypatch.setattr(computenet.engine, "plan", home_first_planner, raising=False)
    cdir, pdir = tmp_path / "c", tmp_path / "p"
    for zone, carbon, usd in (("KR", 430.0, 90.0), ("AU-VIC", 700.0, 60.0), ("XX-NEW", 50.0, 40.0)):
        write_zone(cdir, pdir, zone, carbon, usd)
    coords = tmp_path / "coords.csv"
    coords.write_text("zone,latitude,longitude\nKR,37.57,126.98\nXX-NEW,64.1,-21.9\n")
    trace = tmp_path / "t.csv"
    rows = ["arrival_s,duration_s,accelerators,home_site"]
    rows += [f"{i * 900},3600,1,{('KR', 'AU-VIC', 'XX-NEW')[i % 3]}" for i in range(12)]
    trace.write_text("\n".join(rows) + "\n")
    out = tmp_path / "o.json"
    text = _run(
        [
            "--trace", str(trace), "--trace-format", "csv",
            "--zones", "KR,AU-VIC,XX-NEW", "--carbon-dir", str(cdir), "--price-dir", str(pdir),
            "--zone-coords", str(coords), "--capacity", "4",
            "--policy", "fifo-home,greedy", "--sweep", "", "--no-bound", "--json", str(out),
        ]
    )  # fmt: skip
    assert "fifo-home" in text
    notes = " ".join(json.loads(out.read_text())["network_notes"])
    assert "AU-VIC" in notes and "no coordinates" in notes and "default" in notes
    assert "AU-VIC" in text and "default" in text  # stated on the terminal too
