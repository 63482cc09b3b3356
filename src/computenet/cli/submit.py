"""``computenet submit``: submit a job to a running service."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from computenet.cli.app import app
from computenet.errors import InputError
from computenet.safetext import COMMAND_ALLOWED, refusal

Url = Annotated[str | None, typer.Option(help="service URL (env COMPUTENET_URL)")]
Token = Annotated[str | None, typer.Option(help="bearer token (env COMPUTENET_TOKEN)")]


@app.command()
def submit(
    name: Annotated[str, typer.Argument(help="job name")],
    accelerators: Annotated[int, typer.Option(help="accelerators needed at once")] = 1,
    duration_h: Annotated[float, typer.Option(help="run time on the reference, hours")] = 1.0,
    command: Annotated[str | None, typer.Option(help="shell command to run")] = None,
    deadline_s: Annotated[int | None, typer.Option(help="deadline, UTC epoch s")] = None,
    priority: Annotated[int, typer.Option(help="higher goes first")] = 0,
    priority_class: Annotated[
        str | None, typer.Option(help="a named priority class (computenet priorities list)")
    ] = None,
    accelerator_type: Annotated[
        list[str] | None, typer.Option(help="an allowed accelerator type (repeat; default any)")
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option(help="a dataset id the job reads (repeat)")
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="retry-safe key")] = None,
    url: Url = None,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the job as JSON")] = False,
) -> None:
    """Submit a job; prints its id. A --command needs the tenant's 'commands' permission."""
    from computenet.cli.client import call

    _refuse_control_characters(name, command, accelerator_type or [], dataset or [])
    body: dict[str, object] = {
        "name": name,
        "accelerators": accelerators,
        "duration_h": duration_h,
        "priority": priority,
    }
    if priority_class is not None:
        body["priority_class"] = priority_class
    if command is not None:
        body["command"] = command
    if deadline_s is not None:
        body["deadline_s"] = deadline_s
    if accelerator_type:
        body["accelerator_types"] = accelerator_type
    if dataset:
        body["datasets"] = dataset
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job = call("POST", "/v1/jobs", url, token, json=body, headers=headers)
    typer.echo(json.dumps(job, indent=2) if as_json else job["id"])


def _refuse_control_characters(
    name: str, command: str | None, accelerator_types: list[str], datasets: list[str]
) -> None:
    """The API refuses these too (422); saying so here names the flag to fix."""
    checks = [("NAME", name, ""), ("--command", command, COMMAND_ALLOWED)]
    checks += [("--accelerator-type", t, "") for t in accelerator_types]
    checks += [("--dataset", d, "") for d in datasets]
    for flag, text, allowed in checks:
        reason = refusal(text, allowed) if text is not None else None
        if reason is not None:
            raise InputError(reason, source=flag, fix="pass the text without control characters")
