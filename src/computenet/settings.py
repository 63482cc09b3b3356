"""Service settings: where the data lives, which database, limits. All have defaults.

The data directory is ``$COMPUTENET_HOME`` if set, else ``~/.local/share/computenet``; the
default database is the SQLite file ``computenet.db`` in it, job output goes to ``jobs/``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from computenet.errors import InputError
from computenet.model import DEFAULT_CARBON_PRICE_CNY_PER_T


def data_dir() -> Path:
    """The documented data directory (created on first use by the service)."""
    home = os.environ.get("COMPUTENET_HOME")
    if home:
        return Path(home)
    return Path.home() / ".local" / "share" / "computenet"


def default_db_url() -> str:
    return f"sqlite:///{data_dir() / 'computenet.db'}"


@dataclass(frozen=True)
class Settings:
    """Everything ``create_app`` needs. Times in seconds, sizes in bytes."""

    db_url: str = field(default_factory=default_db_url)
    home: Path = field(default_factory=data_dir)
    network: str = "china"
    # Which declared direct green supply is mixed into the sites' price and carbon
    # (computenet.signals.green.GREEN_MODES), and the carbon model (annual factor, or the
    # modelled hourly series: computenet.signals.modelled.CARBON_MODELS).
    green_supply: str = "declared"
    carbon_model: str = "annual"
    admin_token: str | None = field(
        default_factory=lambda: os.environ.get("COMPUTENET_ADMIN_TOKEN") or None
    )
    max_body_bytes: int = 64 * 1024
    # Token bucket per bearer token: sustained requests per second and burst size.
    rate_per_s: float = 5000.0
    rate_burst: int = 10000
    # Token bucket per client address for requests with an unknown token: each costs a
    # database lookup, and a flood of guesses must not reach the database (429 instead).
    auth_fail_per_s: float = 5.0
    auth_fail_burst: int = 50
    # Submissions arriving within this window are committed in one transaction. Without
    # group commit each submission is its own transaction (the benchmark's baseline).
    group_commit: bool = True
    batch_window_s: float = 0.002
    batch_max: int = 512
    # Live loop: how often it plans and polls executors, and how long a claim lasts.
    loop_interval_s: float = 1.0
    lease_s: int = 30
    run_loop: bool = True
    # Several service processes on one database: only the holder of the leader lease runs
    # the loop. It renews every ``leader_renew_s``; killed, it is replaced within
    # ``leader_lease_s + leader_renew_s`` (see computenet.control.leader).
    leader_lease_s: float = 10.0
    leader_renew_s: float = 2.0
    # Placement policy of the engine, and the carbon price (CNY per tonne CO2) in its objective.
    policy: str = "greedy"
    carbon_price_cny_per_t: float = DEFAULT_CARBON_PRICE_CNY_PER_T
    # Executor for the sites whose network file says ``simulated`` (every site of the
    # built-in catalog): ``simulated`` runs nothing; ``local`` runs their jobs' commands on
    # this machine, so it is off unless the operator asks for it (``serve --executor local``).
    executor: str = "simulated"
    # Health and failover: every ``heartbeat_interval_s`` each site's executor is asked
    # whether its engine answers, waiting at most ``heartbeat_timeout_s`` (in threads, so one
    # silent engine does not stall the others); a site silent for ``site_down_after_s`` is
    # marked down and its jobs are planned elsewhere. 10 s + 30 s leaves a failed site's
    # jobs well inside the 2-minute failover target (a tick plans and dispatches them).
    heartbeat_interval_s: float = 10.0
    heartbeat_timeout_s: float = 5.0
    site_down_after_s: float = 30.0
    # /healthz answers 503 when this process runs the loop and no tick has completed for
    # this long (a tick normally completes every ``loop_interval_s``).
    loop_stale_after_s: float = 30.0
    # How often a checkpointable job that names no interval saves (the engine's default).
    checkpoint_interval_s: int = 3600

    def __post_init__(self) -> None:
        price = self.carbon_price_cny_per_t
        if not (isinstance(price, int | float) and math.isfinite(price) and price >= 0):
            raise InputError(
                f"carbon price {price!r} is not a finite number >= 0",
                source="carbon_price_cny_per_t",
                fix=f"give CNY per tonne CO2, e.g. the default {DEFAULT_CARBON_PRICE_CNY_PER_T:g}",
            )
