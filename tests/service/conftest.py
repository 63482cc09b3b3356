"""Fixtures of the service tests: a fresh SQLite file or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("COMPUTENET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_ready() -> bool:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def pg_server() -> str:
    """A running PostgreSQL (started with pg_ctlcluster if it is not running)."""
    if not _pg_ready():
        versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
        if not versions or shutil.which("pg_ctlcluster") is None:
            pytest.fail("PostgreSQL is not running and pg_ctlcluster is not available")
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
        )
        if not _pg_ready():
            pytest.fail(f"PostgreSQL did not start at {PG_ADMIN_URL}")
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh database for this test session, dropped at the end."""
    import psycopg

    name = "cn_test_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _close_leftover_connections(url: str) -> None:
    """Close what a test's engines left open on the test database (an app never started as
    a context manager keeps its pool), so a long run never reaches max_connections."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs on SQLite and on PostgreSQL. The PG tables are emptied per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cn.db'}"
        return
    url: str = request.getfixturevalue("pg_url")
    import psycopg

    from computenet.store.repository import migrate, open_engine

    engine = open_engine(url)
    migrate(engine)
    engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE tenants, tokens, jobs, audit, datasets, site_feeds, site_health, stale_runs,"
            " tenant_permissions, loop_leader, provider_sites, ledger_transactions,"
            " ledger_postings, market_offers, market_orders, pool_certificates, tenant_quotas,"
            " priority_classes,"
            " grid_events, inference_services"
        )
    yield url
    _close_leftover_connections(url)


ADMIN = "cn_test_admin_token_0123456789abcdef"
