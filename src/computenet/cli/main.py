"""Entry point: registers every command module and turns deliberate errors into one line."""

from __future__ import annotations

import sys

from rich.console import Console

from computenet.cli.app import app
from computenet.errors import ComputenetError

# Importing a command module registers its commands on ``app``; one line per module.
# (command modules are imported here)
# isort: split
import computenet.cli.demo
import computenet.cli.explain
import computenet.cli.hubs
import computenet.cli.jobs
import computenet.cli.plan
import computenet.cli.serve
import computenet.cli.simulate
import computenet.cli.submit
import computenet.cli.tenants  # noqa: F401


def main() -> None:
    """Run the CLI; a ``ComputenetError`` prints its message (no trace) and exits 2."""
    try:
        app()
    except ComputenetError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
