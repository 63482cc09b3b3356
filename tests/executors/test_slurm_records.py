"""Reading what Slurm says: lines as they come from scontrol -o, the job-completion file and
sacct on the test bed (Slurm 22.05), mapped to our statuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from computenet.executors.slurm_records import (
    conf_settings,
    has_accounting,
    jobcomp_file,
    key_values,
    status_of,
)

SCONTROL = (
    "JobId=7 JobName=computenet-r1 UserId=root(0) JobState=RUNNING Reason=None "
    "Comment=computenet:job:j1:tenant:t1 AllocNode:Sid=vm:9261 CPUs/Task=1 "
    "ReqB:S:C:T=0:0:*:* ExitCode=0:0 Power= TresPerNode=gres:gpu:h100:2"
)
JOBCOMP = (
    "JobId=1 UserId=root(0) GroupId=root(0) Name=computenet-r1 JobState=COMPLETED "
    "Partition=main TimeLimit=UNLIMITED StartTime=2026-11-26T11:12:25 NodeList=a1 "
    "ReservationName= Tres=cpu=1,mem=4000M,node=1,billing=1 Account= DerivedExitCode=0:0 "
    "ExitCode=0:0 \n"
)


def test_key_values_keep_odd_keys_and_empty_values() -> None:
    fields = key_values(SCONTROL)
    assert fields["JobName"] == "computenet-r1"
    assert fields["AllocNode:Sid"] == "vm:9261" and fields["CPUs/Task"] == "1"
    assert fields["ReqB:S:C:T"] == "0:0:*:*" and fields["Power"] == ""
    assert fields["TresPerNode"] == "gres:gpu:h100:2"
    done = key_values(JOBCOMP)
    assert (done["Name"], done["JobState"], done["ReservationName"]) == (
        "computenet-r1",
        "COMPLETED",
        "",
    )
    assert done["Tres"] == "cpu=1,mem=4000M,node=1,billing=1"


@pytest.mark.parametrize(
    ("fields", "status", "exit_code", "words"),
    [
        ({"JobState": "PENDING", "Reason": "Resources"}, "pending", None, "Resources"),
        ({"JobState": "REQUEUED"}, "pending", None, "REQUEUED"),
        ({"JobState": "RUNNING", "Reason": "None"}, "running", None, "RUNNING"),
        ({"JobState": "COMPLETED", "ExitCode": "0:0"}, "succeeded", 0, "COMPLETED"),
        ({"JobState": "FAILED", "ExitCode": "3:0"}, "failed", 3, "exit code 3"),
        ({"JobState": "TIMEOUT", "ExitCode": "0:15"}, "failed", -15, "time limit"),
        ({"JobState": "NODE_FAIL", "ExitCode": "0:0"}, "failed", 0, "node of the job failed"),
        ({"JobState": "OUT_OF_MEMORY", "ExitCode": "0:125"}, "failed", -125, "out of memory"),
        ({"JobState": "CANCELLED by 0", "ExitCode": "0:15"}, "cancelled", None, "CANCELLED"),
        ({"JobState": "SOMETHING_NEW"}, "unknown", None, "SOMETHING_NEW"),
    ],
)
def test_slurm_states_map_to_our_statuses(
    fields: dict[str, str], status: str, exit_code: int | None, words: str
) -> None:
    got = status_of(fields, "slurm:a:1")
    assert (got.status, got.exit_code, got.local_id) == (status, exit_code, "slurm:a:1")
    assert words in got.message


def test_the_conf_names_accounting_and_the_completion_file(tmp_path: Path) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=a  # a comment\n"
        "JobCompType=jobcomp/filetxt\nJobCompLoc=/var/log/slurm/jobcomp.txt\n"
        "accountingstoragetype=accounting_storage/slurmdbd\n"
    )
    settings = conf_settings(conf)
    assert settings["clustername"] == "a"
    assert jobcomp_file(settings) == Path("/var/log/slurm/jobcomp.txt")
    assert has_accounting(settings)
    conf.write_text("JobCompType=jobcomp/none\nAccountingStorageType=accounting_storage/none\n")
    settings = conf_settings(conf)
    assert jobcomp_file(settings) is None and not has_accounting(settings)
    assert conf_settings(tmp_path / "missing.conf") == {}
