"""`computenet quotas` and `computenet priorities` against a real service process."""

from __future__ import annotations

import json

import pytest
from tests.service.test_cli import ADMIN, cli, server  # noqa: F401 (the server fixture)
from typer.testing import CliRunner

from computenet.cli.app import app
from computenet.cli.quotas import parse_counts
from computenet.errors import InputError


def test_quotas_set_list_delete_and_priority_classes(server: str) -> None:  # noqa: F811
    admin = {"COMPUTENET_URL": server, "COMPUTENET_TOKEN": ADMIN}
    created = json.loads(cli("tenants", "--create", "acme", **admin))
    acme = {"COMPUTENET_URL": server, "COMPUTENET_TOKEN": created["token"]}
    out = json.loads(
        cli("quotas", "set", "acme", "--nominal", "A100=8", "--borrow", "A100=4", **admin)
    )
    assert out["tenant_id"] == created["id"] and out["nominal"] == {"A100": 8}
    listed = json.loads(cli("quotas", "list", **admin))
    assert [q["borrowing_limit"] for q in listed] == [{"A100": 4}]
    assert json.loads(cli("quotas", "list", "--mine", **acme))[0]["nominal"] == {"A100": 8}
    # A tenant's token may not set quotas: the CLI says so and exits non-zero.
    denied = CliRunner().invoke(app, ["quotas", "set", "acme", "--nominal", "A100=99"], env=acme)
    assert denied.exit_code != 0
    cli("priorities", "set", "urgent", "900", **admin)
    names = [c["name"] for c in json.loads(cli("priorities", "list", **acme))]
    assert names == ["low", "normal", "urgent", "high"]
    job = json.loads(cli("submit", "j", "--priority-class", "urgent", "--json", **acme))
    assert job["priority"] == 900
    assert "removed" in cli("quotas", "delete", "acme", **admin)
    assert json.loads(cli("quotas", "list", **admin)) == []


def test_counts_must_be_type_equals_count_naming_the_flag() -> None:
    assert parse_counts(["A100=8", "H20=2"], "--nominal") == {"A100": 8, "H20": 2}
    for bad in ("A100", "=3", "A100=x", "A100=-1"):
        with pytest.raises(InputError, match="--borrow"):
            parse_counts([bad], "--borrow")
