"""The ``kubernetes`` executor: its manifests validated offline against the Kubernetes 1.30
schema, and its calls run against the in-process fake API server (``beds/k8s_fake.py``).
No live cluster is used here (none can run on these machines)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # in the dev extra, with kubernetes itself
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beds.k8s_fake import ApiError, FakeKubernetes, validate_job
from computenet.catalog import load_network
from computenet.errors import (
    ExecutorRefused,
    ExecutorUnavailable,
    InputError,
    MissingDependencyError,
)
from computenet.executors.base import Dispatch
from computenet.executors.kubernetes import KubernetesExecutor
from computenet.executors.kubernetes_manifest import (
    QUEUE_LABEL,
    REQUEST_LABEL,
    KubernetesOptions,
    is_dns_label,
    is_label_value,
    job_manifest,
    job_name,
    label_value,
)
from computenet.executors.registry import kinds, make_executor

K8S_VERSION = "1.30"  # the schema every manifest is validated against
NS = "computenet"
SITE = {
    "namespace": NS,
    "queue": "team-a",
    "resource": "nvidia.com/gpu",
    "node_selector": {"cloud.example.com/pool": "gpu"},
    "accelerator_label": "nvidia.com/gpu.product",
    "accelerator_values": {"H100": "NVIDIA-H100-80GB-HBM3"},
    "grace_s": 120,
    "image": "python:3.12-slim",
}


def dispatch(request_id: str = "d-1", **fields: Any) -> Dispatch:
    base: dict[str, Any] = {
        "job_id": "j_abc",
        "tenant_id": "t_acme",
        "command": "echo hello",
        "accelerators": 8,
        "accelerator": "H100",
        "walltime_s": 3600,
    }
    return Dispatch(request_id=request_id, **(base | fields))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKubernetes]:
    server = FakeKubernetes(K8S_VERSION, kueue=True).start()
    yield server
    server.stop()


def executor(fake: FakeKubernetes, **options: Any) -> KubernetesExecutor:
    built = make_executor("kubernetes", "east", SITE | {"host": fake.url} | options, Path("."))
    assert isinstance(built, KubernetesExecutor)
    return built


def options(**overrides: Any) -> KubernetesOptions:
    return KubernetesOptions.parse("east", SITE | overrides)


# -- manifests, offline ---------------------------------------------------------------------


def test_manifest_asks_for_the_gang_on_the_pool_in_the_queue() -> None:
    job = job_manifest(dispatch(accelerators=8), options())
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"] == {
        "limits": {"nvidia.com/gpu": "8"},
        "requests": {"nvidia.com/gpu": "8"},
    }
    assert pod["nodeSelector"] == {
        "cloud.example.com/pool": "gpu",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    }
    labels = job["metadata"]["labels"]
    assert labels[QUEUE_LABEL] == "team-a"
    assert labels[REQUEST_LABEL] == "d-1"
    assert labels["computenet.io/job-id"] == "j_abc"
    assert labels["computenet.io/tenant"] == "t_acme"
    assert QUEUE_LABEL not in job["spec"]["template"]["metadata"]["labels"]
    assert job["spec"]["activeDeadlineSeconds"] == 3600 + 120
    assert job["spec"]["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never"
    assert container["command"] == ["/bin/sh", "-c", "echo hello"]
    # Kueue's webhook suspends a queued Job itself; its docs ask for no suspend field.
    assert "suspend" not in job["spec"]


def test_manifest_runs_unprivileged_without_cluster_credentials() -> None:
    pod = job_manifest(dispatch(), options())["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = pod["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_environment_holds_only_allowed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPUTENET_ADMIN_TOKEN", "secret-admin-token")
    monkeypatch.setenv("COMPUTENET_DATABASE_URL", "postgresql://secret")
    extra = {
        "COMPUTENET_ADMIN_TOKEN": "leaked",
        "AWS_SECRET_ACCESS_KEY": "leaked",
        "COMPUTENET_CHECKPOINT_DIR": "/ckpt/j_abc",
        "HF_HOME": "/cache/hf",
    }
    job = job_manifest(dispatch(env=extra), options(env_allow=["HF_HOME"]))
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {
        "COMPUTENET_JOB_ID": "j_abc",
        "COMPUTENET_REQUEST_ID": "d-1",
        "COMPUTENET_TENANT_ID": "t_acme",
        "COMPUTENET_ACCELERATORS": "8",
        "COMPUTENET_WALLTIME_S": "3600",
        "COMPUTENET_CHECKPOINTABLE": "0",
        "COMPUTENET_CHECKPOINT_DIR": "/ckpt/j_abc",
        "HF_HOME": "/cache/hf",
    }
    assert "secret" not in str(job) and "leaked" not in str(job)


@pytest.mark.parametrize(
    "request_id", ["d" * 300, "-" * 70, "J_ABC/Dispatch:1", "日本語", "a", "x" * 63, "-a-"]
)
def test_names_and_labels_from_any_request_id(request_id: str) -> None:
    job = job_manifest(dispatch(request_id), options())
    validate_job(job, NS, K8S_VERSION)
    assert is_dns_label(job["metadata"]["name"])
    assert is_label_value(job["metadata"]["labels"][REQUEST_LABEL])


def test_no_queue_no_accelerators_no_command() -> None:
    bare = KubernetesOptions.parse("east", {})
    job = job_manifest(dispatch(accelerators=0, accelerator=None, command=None), bare)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert QUEUE_LABEL not in job["metadata"]["labels"]
    assert "resources" not in container
    assert "nodeSelector" not in job["spec"]["template"]["spec"]
    assert container["command"][:2] == ["/bin/sh", "-c"] and container["command"][2]


TOLERATIONS = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "pool", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {"operator": "Exists"},
]
odd_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=300,
)
# Ids as our services make them (ASCII, possibly long) and as anyone could (any text).
id_like = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789-_./:", min_size=1, max_size=300
)
any_id = id_like | odd_text
label_safe = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?\Z")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request_id=any_id,
    job_id=any_id,
    tenant_id=any_id,
    command=st.none() | odd_text,
    gang=st.integers(0, 4096),
    accelerator=st.none() | label_safe,
    walltime_s=st.integers(0, 10**8),
    queue=st.none() | label_safe,
    selector=st.dictionaries(
        st.sampled_from(["nvidia.com/gpu.product", "pool", "topology.kubernetes.io/zone"]),
        label_safe,
        max_size=3,
    ),
    resource=st.sampled_from(["nvidia.com/gpu", "amd.com/gpu", "huawei.com/Ascend910"]),
    tolerations=st.lists(st.sampled_from(TOLERATIONS), max_size=3),
)
def test_every_manifest_is_valid_for_kubernetes(
    request_id: str,
    job_id: str,
    tenant_id: str,
    command: str | None,
    gang: int,
    accelerator: str | None,
    walltime_s: int,
    queue: str | None,
    selector: dict[str, str],
    resource: str,
    tolerations: list[dict[str, Any]],
) -> None:
    raw: dict[str, Any] = {"node_selector": selector, "resource": resource}
    raw["tolerations"] = tolerations
    raw |= {"queue": queue, "accelerator_label": "nvidia.com/gpu.product"} if queue else {}
    site = KubernetesOptions.parse("east", raw)
    d = Dispatch(request_id, job_id, tenant_id, command, gang, accelerator, walltime_s)
    job = job_manifest(d, site)
    # kubernetes-validate's strict 1.30 schema (loaded once) and the API server's own rules.
    validate_job(job, site.namespace, K8S_VERSION)
    assert job == job_manifest(d, site)  # deterministic
    assert is_dns_label(job["metadata"]["name"])
    assert all(is_label_value(v) for v in job["metadata"]["labels"].values())
    assert job["metadata"]["annotations"]["computenet.io/request-id"] == request_id


@given(st.lists(any_id, min_size=2, max_size=20, unique=True))
def test_distinct_requests_get_distinct_names_and_labels(ids: list[str]) -> None:
    assert len({job_name(i) for i in ids}) == len(ids)
    assert len({label_value(i) for i in ids}) == len(ids)


def test_the_fake_refuses_what_a_server_refuses() -> None:
    """The fake is not a rubber stamp: an unknown field (the strict schema) and a bad label
    value (the server's own rules) are both 422 naming the field."""
    job = job_manifest(dispatch(), options())
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 8
    with pytest.raises(ApiError) as schema:
        validate_job(job, NS, K8S_VERSION)
    assert schema.value.code == 422 and "gpus" in schema.value.body["message"]
    with pytest.raises(kubernetes_validate.ValidationError):  # the same verdict, uncached
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    job = job_manifest(dispatch(), options())
    job["metadata"]["labels"][REQUEST_LABEL] = "not a label value"
    with pytest.raises(ApiError) as rules:
        validate_job(job, NS, K8S_VERSION)
    assert rules.value.code == 422 and "metadata.labels" in rules.value.body["message"]
    job = job_manifest(dispatch(), options())
    job["spec"]["template"]["spec"]["tolerations"] = [{"key": "gpu", "tolerationSeconds": 5}]
    with pytest.raises(ApiError, match="tolerations"):
        validate_job(job, NS, K8S_VERSION)


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"namespace": "Team_A"}, "namespace"),
        ({"queue": "team a"}, "queue"),
        ({"node_selector": {"bad key!": "x"}}, "node_selector"),
        ({"node_selector": {"pool": "has space"}}, "node_selector"),
        ({"grace_s": -1}, "grace_s"),
        ({"grace_s": True}, "grace_s"),
        ({"resource": "gpu/"}, "resource"),
        ({"host": "127.0.0.1:6443"}, "host"),
        ({"host": "http://h:1", "kubeconfig": "~/.kube/config"}, "kubeconfig"),
        ({"env_allow": ["A-B"]}, "env_allow"),
        ({"nmespace": "x"}, "nmespace"),
        ({"tolerations": [{"key": "gpu", "operator": "Exists", "value": "x"}]}, "tolerations"),
        ({"tolerations": [{"key": "gpu", "tolerationSeconds": 5}]}, "tolerations"),
        ({"tolerations": [{"effect": "NoSchedule"}]}, "tolerations"),
    ],
)
def test_bad_options_name_the_key_and_the_fix(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(InputError) as error:
        KubernetesOptions.parse("east", raw)
    assert f"sites.east.executor.{key}" in str(error.value)
    assert "Fix:" in str(error.value)


def test_missing_kubeconfig_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as error:
        make_executor("kubernetes", "east", {"kubeconfig": str(tmp_path / "nope")}, tmp_path)
    assert "sites.east.executor.kubeconfig" in str(error.value)


def test_registered_and_client_imported_only_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "kubernetes" in kinds()
    code = "import sys, computenet.executors; print('kubernetes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if the extra were not installed
    with pytest.raises(MissingDependencyError, match=r"computenet\[kubernetes\]"):
        make_executor("kubernetes", "east", {"host": "http://127.0.0.1:1"}, Path("."))


# -- against the fake API server -------------------------------------------------------------


def test_submit_creates_one_job_and_a_repeat_finds_it(fake: FakeKubernetes) -> None:
    ex = executor(fake)
    before = fake.created
    local_id = ex.submit(dispatch("sub-1"))
    name = job_name("sub-1")
    assert local_id == f"k8s:east:{NS}/{name}"
    stored = fake.get_job(NS, name)
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    assert stored["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    assert stored["spec"]["activeDeadlineSeconds"] == 3720
    # A repeat, and a new executor (computenet restarted), find the Job instead of creating.
    assert ex.submit(dispatch("sub-1")) == local_id
    assert executor(fake).submit(dispatch("sub-1")) == local_id
    assert fake.created == before + 1


def test_a_job_made_by_a_racing_submit_is_adopted_and_a_stranger_is_not(
    fake: FakeKubernetes,
) -> None:
    ex = executor(fake)
    # A Job with our name and request annotation that the label lookup missed (created
    # between the lookup and the create): the 409 leads to it.
    race = job_manifest(dispatch("race-1"), ex.options)
    del race["metadata"]["labels"][REQUEST_LABEL]
    fake.create_job(NS, race)
    assert ex.submit(dispatch("race-1")) == f"k8s:east:{NS}/{job_name('race-1')}"
    stranger = job_manifest(dispatch("race-2"), ex.options)
    stranger["metadata"]["annotations"]["computenet.io/request-id"] = "someone-else"
    del stranger["metadata"]["labels"][REQUEST_LABEL]
    fake.create_job(NS, stranger)
    with pytest.raises(ExecutorRefused, match="another request"):
        ex.submit(dispatch("race-2"))


def test_status_follows_the_job_through_its_life(fake: FakeKubernetes) -> None:
    ex = executor(fake)
    name = job_name("life-1")
    assert ex.poll("life-1", None).status == "unknown"
    ex.submit(dispatch("life-1"))
    queued = ex.poll("life-1", None)
    assert (queued.status, "Kueue" in queued.message) == ("pending", True)
    fake.admit(NS, name)
    assert ex.poll("life-1", None).status == "pending"
    assert ex.output("life-1", None, 100) == ("", False)  # no pod yet
    pod = fake.run(NS, name, ready=False)
    assert ex.poll("life-1", None).status == "pending"
    assert ex.output("life-1", None, 100) == ("", False)  # container waiting to start
    fake.pods[(NS, pod)]["status"]["phase"] = "Running"
    fake.jobs[(NS, name)]["status"]["ready"] = 1
    fake.set_log(NS, pod, "epoch 1\nepoch 2\n")
    running = ex.poll("life-1", None)
    assert running.status == "running"
    assert running.local_id == f"k8s:east:{NS}/{name}"
    assert ex.output("life-1", None, 1000) == ("epoch 1\nepoch 2\n", False)
    assert ex.output("life-1", None, 8) == ("epoch 2\n", True)
    fake.complete(NS, name)
    done = ex.poll("life-1", None)
    assert (done.status, done.exit_code) == ("succeeded", 0)
    assert ex.output("life-1", None, 1000)[0] == "epoch 1\nepoch 2\n"  # logs outlive the run


def test_a_failed_job_reports_the_reason_and_exit_code(fake: FakeKubernetes) -> None:
    ex = executor(fake, queue=None)
    ex.submit(dispatch("fail-1"))
    name = job_name("fail-1")
    fake.run(NS, name)
    fake.fail(
        NS,
        name,
        exit_code=137,
        reason="DeadlineExceeded",
        message="Job was active longer than specified deadline",
    )
    failed = ex.poll("fail-1", None)
    assert failed.status == "failed"
    assert failed.exit_code == 137
    assert failed.message.startswith("DeadlineExceeded")


def test_cancel_deletes_the_job_and_its_pods(fake: FakeKubernetes) -> None:
    ex = executor(fake, queue=None)
    ex.submit(dispatch("cancel-1"))
    name = job_name("cancel-1")
    pod = fake.run(NS, name)
    ex.cancel("cancel-1", None)
    assert (NS, name) not in fake.jobs and (NS, pod) not in fake.pods
    assert ex.poll("cancel-1", None).status == "cancelled"
    ex.cancel("cancel-1", None)  # a repeat is harmless
    ex.cancel("never-submitted", None)
    assert executor(fake).poll("cancel-1", None).status == "unknown"  # after a restart


def test_an_invalid_job_is_refused_with_the_servers_message(fake: FakeKubernetes) -> None:
    """The pool's accelerator type is not a valid node label value: the API server (the
    fake, as a real one does) answers 422, and only this job fails, with that message."""
    ex = executor(fake, accelerator_values={})
    before = fake.created
    with pytest.raises(ExecutorRefused) as refused:
        ex.submit(dispatch("bad-1", accelerator="Ascend 910B"))
    message = str(refused.value)
    assert "422" in message and "spec.template.spec.nodeSelector" in message
    assert '"Ascend 910B"' in message
    assert fake.created == before
    ex.submit(dispatch("good-1"))  # the next job goes on
    assert fake.created == before + 1


def test_heartbeat_answers_while_the_server_does(fake: FakeKubernetes) -> None:
    executor(fake).heartbeat()


def test_a_dead_server_is_unavailable(tmp_path: Path) -> None:
    server = FakeKubernetes(K8S_VERSION).start()
    ex = executor(server, timeout_s=2)
    ex.heartbeat()
    server.stop()  # the pooled keep-alive connection is cut too
    with pytest.raises(ExecutorUnavailable, match="east"):
        ex.heartbeat()
    with pytest.raises(ExecutorUnavailable):
        ex.submit(dispatch("dead-1"))
    with pytest.raises(ExecutorUnavailable):
        ex.poll("dead-1", None)


def test_a_silent_server_is_unavailable_after_the_timeout() -> None:
    """A server that accepts connections and never answers (hung, or a black-holed proxy):
    the call ends at ``timeout_s`` instead of blocking the loop."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    try:
        host, port = listener.getsockname()
        ex = make_executor(
            "kubernetes", "east", {"host": f"http://{host}:{port}", "timeout_s": 0.3}, Path(".")
        )
        with pytest.raises(ExecutorUnavailable, match="Timeout"):
            ex.heartbeat()
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_network_file_site_runs_on_the_fake(fake: FakeKubernetes, tmp_path: Path) -> None:
    """The executor table of a site in a network file reaches the executor intact (nested
    tables included), and the site's pool type selects the nodes."""
    net = tmp_path / "net.toml"
    net.write_text(
        f"""
name = "k8s"
usd_to_cny = 7.0
[[sites]]
id = "east"
latitude = 30.0
longitude = 120.0
role = "east"
pue = 1.2
price = {{ kind = "constant", value = 0.5 }}
carbon = {{ kind = "constant", value = 500.0 }}
pools = [{{ accelerator = "H100", count = 64 }}]
executor = {{ kind = "kubernetes", host = "{fake.url}", namespace = "{NS}", queue = "team-a", \
accelerator_label = "nvidia.com/gpu.product", \
accelerator_values = {{ H100 = "NVIDIA-H100-80GB-HBM3" }}, grace_s = 60 }}
""",
        encoding="utf-8",
    )
    (site,) = load_network(net).sites
    ex = make_executor(site.executor, site.id, site.executor_options, tmp_path)
    ex.submit(dispatch("netfile-1", accelerator=site.pools[0].accelerator, walltime_s=600))
    stored = fake.get_job(NS, job_name("netfile-1"))
    pod = stored["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert stored["spec"]["activeDeadlineSeconds"] == 660


def test_a_forbidden_list_is_the_sites_trouble_and_a_forbidden_create_the_jobs(
    fake: FakeKubernetes,
) -> None:
    """RBAC refusing to list Jobs says nothing against one job: ExecutorUnavailable (the
    site may be marked down). Refusing to create one fails that job with the server's
    words (a quota or a policy says 403 too)."""
    ex = executor(fake)
    fake.forbidden.add(("list", "jobs"))
    try:
        with pytest.raises(ExecutorUnavailable, match="cannot list resource"):
            ex.heartbeat()
        with pytest.raises(ExecutorUnavailable):
            ex.poll("rbac-1", None)
    finally:
        fake.forbidden.clear()
    fake.forbidden.add(("create", "jobs"))
    try:
        with pytest.raises(ExecutorRefused, match=r"403.*cannot create resource"):
            ex.submit(dispatch("rbac-1"))
    finally:
        fake.forbidden.clear()
