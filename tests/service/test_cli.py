"""`computenet serve` as a real process, driven by the CLI client commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from computenet.cli.app import app
from computenet.cli.main import main as _register  # noqa: F401 (registers the commands)

ADMIN = "cn_cli_test_admin_0123456789"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, COMPUTENET_HOME=str(tmp_path), COMPUTENET_ADMIN_TOKEN=ADMIN)
    log = (tmp_path / "server.log").open("wb")
    cmd = [sys.executable, "-m", "computenet.cli.main", "serve", "--port", str(port)]
    cmd += ["--executor", "local"]  # the jobs' commands run on this machine
    proc = subprocess.Popen([*cmd, "--policy", "cheapest-now"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.kill()
        proc.wait()
        log.close()
    # The default database lives in the documented data directory.
    assert (tmp_path / "computenet.db").exists()


def cli(*args: str, **env: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_tenant_submit_list_explain(server: str) -> None:
    admin = {"COMPUTENET_URL": server, "COMPUTENET_TOKEN": ADMIN}
    created = json.loads(cli("tenants", "--create", "acme", **admin))
    granted = json.loads(cli("tenants", "--grant", "commands", "acme", **admin))  # by name
    assert granted["id"] == created["id"] and granted["permissions"] == ["commands"]
    cli("tenants", "--create", "gridco", "--role", "provider", "--site", "guian", **admin)
    bound = json.loads(cli("tenants", "--site", "horinger", "--site", "guian", "gridco", **admin))
    assert bound["role"] == "provider" and bound["sites"] == ["guian", "horinger"]
    env = {"COMPUTENET_URL": server, "COMPUTENET_TOKEN": created["token"]}
    # A short job due within two minutes: the engine must start it now.
    args = ["--command", "echo hi", "--duration-h", "0.005", "--idempotency-key", "k1"]
    args += ["--deadline-s", str(int(time.time()) + 120)]
    job_id = cli("submit", "hello", *args, **env).strip()
    again = cli("submit", "hello", *args, **env)
    assert again.strip() == job_id  # same key, same job
    for _ in range(400):  # the live loop in the server places, runs and finishes it
        page = json.loads(cli("jobs", "--json", **env))
        if page["items"][0]["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert page["total"] == 1 and page["items"][0]["state"] == "succeeded"
    text = cli("explain", job_id, **env)
    assert f"job {job_id}: succeeded" in text and "why [cost]: cheapest-now: " in text
    assert "carbon" in text
    # The rejected sites come with their codes, as the API rendered them (engine.reasons).
    explained = json.loads(cli("explain", job_id, "--json", **env))["reasons"]
    for r in explained:
        if r["role"] == "rejected":
            assert f"  rejected {r['site_id']} [{r['code']}]: {r['message']}" in text
    assert any(r["role"] == "rejected" for r in explained)
    # A name with Rich markup in it is listed as written (it used to crash the table).
    cli("submit", "[/x] [bold]", "--command", "echo hi", "--duration-h", "0.005", **env)
    listing = cli("jobs", **env)
    assert "[/x] [bold]" in listing and "of 2 jobs" in listing
    assert "why" in listing and "│ cost" in listing  # the decision's code, per job
