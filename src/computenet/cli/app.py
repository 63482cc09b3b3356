"""The Typer application every command module registers on.

Command modules import heavy libraries inside their functions so that ``computenet --help``
stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="computenet",
    help=(
        "Place AI training jobs and inference services across a computing-power network "
        "for lower cost and carbon, under deadlines, latency targets and data rules."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from computenet import __version__

        typer.echo(f"computenet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """computenet: cost- and carbon-aware placement on a computing-power network."""
