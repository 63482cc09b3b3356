"""The ray executor against a real Ray head (``ray_head``, started once per run)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.beds.ray import RayHead, _free_ports

from computenet.errors import (
    ExecutorRefused,
    ExecutorUnavailable,
    InputError,
    MissingDependencyError,
)
from computenet.executors.base import TERMINAL_STATUSES, Dispatch, ExecStatus
from computenet.executors.registry import make_executor

# A safety cap on waiting for the head, not a timing assertion: a healthy head answers in
# seconds, and a broken one must fail the test rather than hang it.
WAIT_CAP_S = 90.0


def executor(head: RayHead, tmp_path: Path, **options: Any) -> Any:
    return make_executor("ray", "lab", {"address": head.address, **options}, tmp_path)


def dispatch(command: str | None, **fields: Any) -> Dispatch:
    values: dict[str, Any] = {
        "request_id": "r-" + uuid.uuid4().hex[:12],
        "job_id": "j_" + uuid.uuid4().hex[:8],
        "tenant_id": "t_test",
        "command": command,
        "accelerators": 1,
        "accelerator": "H100",
        "walltime_s": 600,
    }
    values.update(fields)
    return Dispatch(**values)


def wait_for(ex: Any, request_id: str, wanted: set[str]) -> ExecStatus:
    """Poll until the status is one of ``wanted`` (or terminal, which fails the wait)."""
    end = time.monotonic() + WAIT_CAP_S
    status = ex.poll(request_id, None)
    while status.status not in wanted:
        if status.status in TERMINAL_STATUSES:
            printed = ex.output(request_id, None, 4000)[0]
            pytest.fail(f"wanted {wanted}, the job ended {status}: {printed}")
        if time.monotonic() > end:
            pytest.fail(f"still {status} after {WAIT_CAP_S} s, wanted {wanted}")
        time.sleep(0.2)
        status = ex.poll(request_id, None)
    return status


def test_a_job_runs_and_its_output_comes_back(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path, python=ray_head.python)
    d = dispatch("python -c \"import sys; print('hello', 6 * 7, sys.executable)\"")

    local_id = ex.submit(d)
    status = wait_for(ex, d.request_id, {"succeeded"})
    text, cut = ex.output(d.request_id, local_id, 64_000)

    assert local_id == f"ray:lab:{d.request_id}"
    assert status.exit_code == 0 and status.local_id == local_id
    # The site's ``python`` is the job's ``python``, though the head's PATH lacks it.
    assert f"hello 42 {ray_head.python}" in text and not cut, text
    tail, tail_cut = ex.output(d.request_id, local_id, 5)
    assert len(tail.encode()) <= 5 and text.endswith(tail) and tail_cut, (tail, text)


def test_a_job_without_a_command_runs_the_placeholder(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path)
    d = dispatch(None)
    ex.submit(d)
    wait_for(ex, d.request_id, {"succeeded"})
    assert "job has no command" in ex.output(d.request_id, None, 4000)[0]


def test_the_job_sees_only_allowed_variables(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_secret = "server-" + uuid.uuid4().hex
    monkeypatch.setenv("COMPUTENET_ADMIN_TOKEN", server_secret)
    monkeypatch.setenv("COMPUTENET_DATABASE_URL", "postgresql://u:" + server_secret + "@db/x")
    ex = executor(ray_head, tmp_path, pass_env=["OPERATOR_CHOSEN"])
    d = dispatch(
        "env",
        env={"COMPUTENET_ADMIN_TOKEN": "from-dispatch", "OPERATOR_CHOSEN": "yes", "OTHER": "no"},
    )

    ex.submit(d)
    wait_for(ex, d.request_id, {"succeeded"})
    text = ex.output(d.request_id, None, 256_000)[0]

    assert f"COMPUTENET_JOB_ID={d.job_id}" in text
    assert f"COMPUTENET_REQUEST_ID={d.request_id}" in text
    assert "OPERATOR_CHOSEN=yes" in text
    for leaked in (server_secret, ray_head.canary, "from-dispatch", "OTHER=no"):
        assert leaked not in text


def test_cancel_stops_the_whole_job(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path)
    pid_file = tmp_path / "sleeper.pid"
    d = dispatch(f"sleep 300 & echo $! > {pid_file}; wait")

    ex.submit(d)
    wait_for(ex, d.request_id, {"running"})
    while not pid_file.exists() or not pid_file.read_text().strip():
        time.sleep(0.1)
    sleeper = int(pid_file.read_text())
    ex.cancel(d.request_id, None)
    status = wait_for(ex, d.request_id, {"cancelled"})
    ex.cancel(d.request_id, None)  # a repeat, on stopped work, is harmless

    assert status.status == "cancelled"
    assert not _alive(sleeper), "the job's child process outlived the cancel"


def test_a_repeated_submit_starts_the_work_once(ray_head: RayHead, tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    d = dispatch(f"echo ran >> {runs}; sleep 1")
    first = executor(ray_head, tmp_path)
    restarted = executor(ray_head, tmp_path)  # a computenet restarted between the tries

    ids = {first.submit(d), first.submit(d), restarted.submit(d)}
    wait_for(first, d.request_id, {"succeeded"})

    assert ids == {f"ray:lab:{d.request_id}"}
    assert runs.read_text() == "ran\n"


def test_racing_submits_start_the_work_once(ray_head: RayHead, tmp_path: Path) -> None:
    # Four services submitting one request at once: each looks first and finds nothing, so
    # the head's "already exists" answer is what keeps the others from starting it again.
    runs = tmp_path / "runs.txt"
    d = dispatch(f"echo ran >> {runs}")
    racers = [executor(ray_head, tmp_path) for _ in range(4)]
    start = threading.Barrier(len(racers))

    def race(ex: Any) -> str:
        start.wait()
        return str(ex.submit(d))

    with ThreadPoolExecutor(len(racers)) as pool:
        ids = set(pool.map(race, racers))
    wait_for(racers[0], d.request_id, {"succeeded"})

    assert ids == {f"ray:lab:{d.request_id}"}
    assert runs.read_text() == "ran\n"


def test_a_restarted_computenet_follows_a_running_job(ray_head: RayHead, tmp_path: Path) -> None:
    d = dispatch("echo started; sleep 3; echo finished")
    before = executor(ray_head, tmp_path)
    before.submit(d)
    wait_for(before, d.request_id, {"running"})
    del before

    after = executor(ray_head, tmp_path)  # knows nothing but the request id
    assert after.poll(d.request_id, None).status == "running"
    status = wait_for(after, d.request_id, {"succeeded"})

    assert status.exit_code == 0
    assert "finished" in after.output(d.request_id, None, 4000)[0]


def test_a_job_past_its_walltime_is_stopped(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path, grace_s=1, kill_after_s=2)
    d = dispatch("echo working; sleep 60", walltime_s=2)

    ex.submit(d)
    status = wait_for(ex, d.request_id, set(TERMINAL_STATUSES))

    assert status.status == "failed"
    assert status.exit_code == 124  # timeout's TERM ended it
    assert "walltime" in status.message and "3 s" in status.message


def test_a_job_that_ignores_term_is_killed(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path, grace_s=0, kill_after_s=1)
    d = dispatch("trap '' TERM; sleep 60", walltime_s=1)

    ex.submit(d)
    status = wait_for(ex, d.request_id, set(TERMINAL_STATUSES))

    assert status.status == "failed"
    assert status.exit_code in (-9, 137)  # Ray records the killed entrypoint as -9
    assert "walltime" in status.message and "KILL" in status.message


def test_a_failing_command_fails_with_its_exit_code(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path)
    d = dispatch("echo broken >&2; exit 3")
    ex.submit(d)
    status = wait_for(ex, d.request_id, set(TERMINAL_STATUSES))

    assert (status.status, status.exit_code) == ("failed", 3)
    assert "exit code 3" in status.message and "walltime" not in status.message


def test_a_submission_ray_refuses_raises_refused(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path, label_selector={"bad key!": "x"})
    d = dispatch("true")

    with pytest.raises(ExecutorRefused, match="Invalid label key name"):
        ex.submit(d)
    assert ex.poll(d.request_id, None).status == "unknown"


def test_what_the_head_would_mangle_is_refused_here(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path)
    with pytest.raises(ExecutorRefused, match="NUL byte"):
        ex.submit(dispatch("echo a\x00b"))
    with pytest.raises(ExecutorRefused, match="cannot be a Ray submission id"):
        ex.submit(dispatch("true", request_id="a/b"))


def test_an_unknown_request_is_unknown(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path)
    assert ex.poll("never-submitted", None).status == "unknown"
    assert ex.output("never-submitted", None, 100) == ("", False)
    ex.cancel("never-submitted", None)
    ex.heartbeat()


def test_a_dead_head_is_unavailable(tmp_path: Path) -> None:
    (port,) = _free_ports(1)  # nothing listens there
    ex = make_executor("ray", "lab", {"address": f"http://127.0.0.1:{port}"}, tmp_path)
    with pytest.raises(ExecutorUnavailable, match="does not answer"):
        ex.heartbeat()
    with pytest.raises(ExecutorUnavailable):
        ex.submit(dispatch("true"))
    with pytest.raises(ExecutorUnavailable):
        ex.poll("any", None)


def test_a_hung_head_is_unavailable_within_the_timeout(tmp_path: Path) -> None:
    # A socket that accepts connections (the kernel's backlog) and never answers: without a
    # timeout on each call the SDK would wait forever and so would the control loop.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        address = f"http://127.0.0.1:{hung.getsockname()[1]}"
        ex = make_executor("ray", "lab", {"address": address, "timeout_s": 1}, tmp_path)
        with pytest.raises(ExecutorUnavailable, match="does not answer"):
            ex.heartbeat()


def test_each_gpu_job_gets_its_own_device(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path, gpus=True)  # the test head declares one GPU
    first = dispatch("echo devices=$CUDA_VISIBLE_DEVICES; sleep 4", accelerators=1)
    second = dispatch("echo devices=$CUDA_VISIBLE_DEVICES", accelerators=1)

    ex.submit(first)
    wait_for(ex, first.request_id, {"running"})
    ex.submit(second)
    second_then = ex.poll(second.request_id, None).status
    first_then = ex.poll(first.request_id, None).status
    wait_for(ex, first.request_id, {"succeeded"})
    wait_for(ex, second.request_id, {"succeeded"})

    assert (second_then, first_then) == ("pending", "running")  # never two on one device
    for d in (first, second):
        assert "devices=0" in ex.output(d.request_id, None, 4000)[0]


def test_a_pending_gang_can_be_cancelled(ray_head: RayHead, tmp_path: Path) -> None:
    ex = executor(ray_head, tmp_path, gpus=True)
    d = dispatch("echo must not run", accelerators=ray_head.gpus + 1)  # never fits

    ex.submit(d)
    assert ex.poll(d.request_id, None).status == "pending"
    ex.cancel(d.request_id, None)
    restarted = executor(ray_head, tmp_path)  # same data directory, new process

    assert ex.poll(d.request_id, None).status == "cancelled"
    assert restarted.poll(d.request_id, None).status == "cancelled"
    assert "must not run" not in ex.output(d.request_id, None, 4000)[0]


def test_capabilities_follow_the_gpus_option(tmp_path: Path) -> None:
    plain = make_executor("ray", "lab", {"address": "http://127.0.0.1:1"}, tmp_path)
    gpus = make_executor("ray", "lab", {"address": "http://127.0.0.1:1", "gpus": True}, tmp_path)
    assert plain.kind == gpus.kind == "ray"
    assert not plain.capabilities.binds_accelerators and gpus.capabilities.binds_accelerators
    assert plain.capabilities.cancel and plain.capabilities.logs
    assert plain.capabilities.survives_restart and not plain.capabilities.checkpoint_signal


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({}, "sites.lab.executor.address"),
        ({"address": "127.0.0.1:8265"}, "sites.lab.executor.address"),
        ({"address": "http://h:8265", "python": "venv/bin/python"}, "sites.lab.executor.python"),
        ({"address": "http://h:8265", "gpus": "yes"}, "sites.lab.executor.gpus"),
        ({"address": "http://h:8265", "grace_s": -1}, "sites.lab.executor.grace_s"),
        ({"address": "http://h:8265", "timeout_s": 0}, "sites.lab.executor.timeout_s"),
        ({"address": "http://h:8265", "pass_env": ["A B"]}, "sites.lab.executor.pass_env"),
        ({"address": "http://h:8", "label_selector": ["x"]}, "sites.lab.executor.label_selector"),
        ({"address": "http://h:8265", "partition": "gpu"}, "sites.lab.executor.partition"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, Any], where: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Fix: ") as caught:
        make_executor("ray", "lab", options, tmp_path)
    assert caught.value.where == where


def test_without_ray_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray.job_submission", None)  # import now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'computenet\[ray\]'"):
        make_executor("ray", "lab", {"address": "http://127.0.0.1:1"}, tmp_path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
