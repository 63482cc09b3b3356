"""Entry point: registers every command module and turns deliberate errors into one line."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

from computenet.cli.app import app
from computenet.errors import ComputenetError

# Importing a command module registers its commands on ``app``; one line per module.
# (command modules are imported here)
# isort: split
import computenet.cli.demo
import computenet.cli.explain
import computenet.cli.hubs
import computenet.cli.inference
import computenet.cli.jobs
import computenet.cli.measure
import computenet.cli.plan
import computenet.cli.quotas
import computenet.cli.serve
import computenet.cli.simulate
import computenet.cli.submit
import computenet.cli.sweep
import computenet.cli.tenants  # noqa: F401


def print_error(exc: BaseException, console: Console | None = None) -> None:
    """``error: <message>`` with the message as written: it quotes user text (ids, file
    names) and carries brackets of its own (``[[sites]]``, ``computenet[postgres]``), so it
    is never read as Rich markup."""
    con = console or Console(stderr=True)
    line = Text("error: ", style="bold red")
    line.append(str(exc))
    con.print(line, highlight=False, soft_wrap=True)


def main() -> None:
    """Run the CLI; a ``ComputenetError`` prints its message (no trace) and exits 2."""
    try:
        app()
    except ComputenetError as exc:
        print_error(exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
