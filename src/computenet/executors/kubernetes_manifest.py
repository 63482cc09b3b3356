"""What the ``kubernetes`` executor asks a cluster for: its options and one ``batch/v1`` Job
manifest per dispatch, as pure functions (no client, no server), so every manifest can be
built and validated offline.

A Job runs one pod holding the whole gang (``resources.limits[resource] = accelerators``,
requests equal, as the API server requires for extended resources), pinned to the pool by a
node selector, queued in Kueue when the site names a LocalQueue, and found again by the
label that carries our request id. Names and label values are derived deterministically
from our ids, so the same dispatch always builds the same Job.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from computenet.errors import InputError
from computenet.executors.base import Dispatch

API_VERSION = "batch/v1"
REQUEST_LABEL = "computenet.io/request-id"
JOB_LABEL = "computenet.io/job-id"
TENANT_LABEL = "computenet.io/tenant"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"  # Kueue's LocalQueue label (its webhook suspends)
# The label values above are shortened and hashed when an id is not label-safe; the exact
# ids are kept in annotations, which the executor checks when it finds a Job by label.
REQUEST_ANNOTATION = "computenet.io/request-id"
JOB_ANNOTATION = "computenet.io/job-id"
TENANT_ANNOTATION = "computenet.io/tenant-id"
CONTAINER = "job"

PLACEHOLDER_COMMAND = "echo 'computenet: job has no command; nothing to run'"

# The job's environment is built from these names only, never from the server's own
# environment (which holds the admin token and the database URL).
ENV_ALLOWED: frozenset[str] = frozenset(
    {
        "COMPUTENET_JOB_ID",
        "COMPUTENET_REQUEST_ID",
        "COMPUTENET_TENANT_ID",
        "COMPUTENET_ACCELERATORS",
        "COMPUTENET_WALLTIME_S",
        "COMPUTENET_CHECKPOINTABLE",
        "COMPUTENET_CHECKPOINT_DIR",
    }
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label, <= 63
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")  # of a label key, <= 63
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")  # <= 63
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LABEL_MAX = 63
_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
_TAINT_EFFECTS = frozenset({"NoSchedule", "PreferNoSchedule", "NoExecute"})
_HASH_CHARS = 10  # 40 bits of sha256: a collision is checked against the annotation anyway

DEFAULT_TTL_S = 7 * 24 * 3600  # finished Jobs stay a week, long past any reconcile
DEFAULT_GRACE_S = 300
NOBODY_UID = 65534  # many images (python:*, ubuntu) default to root; runAsNonRoot needs a uid


@dataclass(frozen=True)
class KubernetesOptions:
    """A site's ``executor = { kind = "kubernetes", ... }`` table, checked. Times in seconds."""

    namespace: str = "computenet"
    image: str = "python:3.12-slim"
    resource: str = "nvidia.com/gpu"  # the extended resource the device plugin advertises
    node_selector: Mapping[str, str] = field(default_factory=dict)  # for every Job
    accelerator_label: str | None = None  # node label that names the accelerator type
    accelerator_values: Mapping[str, str] = field(default_factory=dict)  # pool type -> value
    tolerations: tuple[Mapping[str, Any], ...] = ()  # e.g. for GPU nodes tainted NoSchedule
    queue: str | None = None  # Kueue LocalQueue in ``namespace``
    grace_s: int = DEFAULT_GRACE_S  # added to the planned walltime: activeDeadlineSeconds
    ttl_s: int = DEFAULT_TTL_S  # ttlSecondsAfterFinished
    run_as_user: int = NOBODY_UID
    env_allow: tuple[str, ...] = ()  # further names of Dispatch.env passed to the job
    kubeconfig: str | None = None
    context: str | None = None
    host: str | None = None  # an API server URL without credentials (a proxy, a test)
    in_cluster: bool = False  # use the pod's service account (computenet runs in the cluster)
    timeout_s: float = 10.0  # per API call (connect and read)

    @classmethod
    def parse(cls, site_id: str, raw: Mapping[str, Any]) -> KubernetesOptions:
        """Check a site's executor table; every error names ``sites.<id>.executor.<key>``."""
        check = _OptionReader(site_id, raw)
        options = cls(
            namespace=check.dns_label("namespace", cls.namespace),
            image=check.image("image", cls.image),
            resource=check.qualified_name("resource", cls.resource),
            node_selector=check.selector("node_selector"),
            accelerator_label=check.optional_qualified_name("accelerator_label"),
            accelerator_values=check.value_map("accelerator_values"),
            tolerations=check.tolerations("tolerations"),
            queue=check.optional_label_value("queue"),
            grace_s=check.count("grace_s", DEFAULT_GRACE_S),
            ttl_s=check.count("ttl_s", DEFAULT_TTL_S),
            run_as_user=check.count("run_as_user", NOBODY_UID, minimum=1),
            env_allow=check.env_names("env_allow"),
            kubeconfig=check.optional_text("kubeconfig"),
            context=check.optional_text("context"),
            host=check.host("host"),
            in_cluster=check.flag("in_cluster"),
            timeout_s=check.positive_number("timeout_s", 10.0),
        )
        check.no_unknown_keys()
        check.one_way_to_connect(options)
        return options


def job_name(request_id: str) -> str:
    """The Job's name for ``request_id``: an RFC 1123 label of at most 63 characters (the
    API server copies it into the pods' ``job-name`` label), the same for the same id."""
    slug = re.sub(r"[^a-z0-9]+", "-", request_id.lower()).strip("-")[:40].rstrip("-")
    digest = _digest(request_id)
    return f"cn-{slug}-{digest}" if slug else f"cn-{digest}"


def label_value(text: str) -> str:
    """``text`` as a label value: itself when it is one, else a label-safe prefix and a
    hash of the whole text (deterministic, at most 63 characters)."""
    if len(text) <= LABEL_MAX and _LABEL_VALUE.match(text):
        return text
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[: LABEL_MAX - _HASH_CHARS - 1]
    slug = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", slug)
    digest = _digest(text)
    return f"{slug}-{digest}" if slug else digest


def request_selector(request_id: str) -> str:
    """The label selector that finds the Job of ``request_id``."""
    return f"{REQUEST_LABEL}={label_value(request_id)}"


def job_manifest(dispatch: Dispatch, options: KubernetesOptions) -> dict[str, Any]:
    """The ``batch/v1`` Job that runs ``dispatch`` at a site with ``options``."""
    name = job_name(dispatch.request_id)
    labels = _labels(dispatch, options)
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": options.namespace,
            "labels": labels,
            "annotations": {
                REQUEST_ANNOTATION: dispatch.request_id,
                JOB_ANNOTATION: dispatch.job_id,
                TENANT_ANNOTATION: dispatch.tenant_id,
            },
        },
        "spec": {
            # One try: a retry is the control loop's decision (it may place the job elsewhere).
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "activeDeadlineSeconds": max(1, dispatch.walltime_s + options.grace_s),
            "ttlSecondsAfterFinished": options.ttl_s,
            "template": {
                # Kueue's queue label belongs on the Job only; the pods carry our ids.
                "metadata": {"labels": {k: v for k, v in labels.items() if k != QUEUE_LABEL}},
                "spec": _pod_spec(dispatch, options),
            },
        },
    }


def _labels(dispatch: Dispatch, options: KubernetesOptions) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/managed-by": "computenet",
        REQUEST_LABEL: label_value(dispatch.request_id),
        JOB_LABEL: label_value(dispatch.job_id),
        TENANT_LABEL: label_value(dispatch.tenant_id),
    }
    if options.queue:
        labels[QUEUE_LABEL] = options.queue
    return labels


def _pod_spec(dispatch: Dispatch, options: KubernetesOptions) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # The job gets no credentials to this cluster's API and no service variables.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": options.run_as_user,
            "runAsGroup": options.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(dispatch, options)],
    }
    selector = node_selector(dispatch, options)
    if selector:
        spec["nodeSelector"] = selector
    if options.tolerations:
        spec["tolerations"] = [dict(t) for t in options.tolerations]
    return spec


def node_selector(dispatch: Dispatch, options: KubernetesOptions) -> dict[str, str]:
    """The site's fixed selector plus, when the site names an ``accelerator_label``, the
    pool's accelerator type (mapped through ``accelerator_values``). The type is not
    checked here: the API server is the authority on label syntax and refuses a bad one
    with a message naming the field (the job then fails alone with that message)."""
    selector = dict(options.node_selector)
    if options.accelerator_label and dispatch.accelerator:
        value = options.accelerator_values.get(dispatch.accelerator, dispatch.accelerator)
        selector[options.accelerator_label] = value
    return selector


def _container(dispatch: Dispatch, options: KubernetesOptions) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": options.image,
        "command": ["/bin/sh", "-c", dispatch.command or PLACEHOLDER_COMMAND],
        "env": [{"name": k, "value": v} for k, v in sorted(job_env(dispatch, options).items())],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if dispatch.accelerators > 0:
        amount = str(dispatch.accelerators)
        container["resources"] = {
            "limits": {options.resource: amount},
            "requests": {options.resource: amount},
        }
    return container


def job_env(dispatch: Dispatch, options: KubernetesOptions) -> dict[str, str]:
    """The job's environment: our ids and plan, and those of ``dispatch.env`` whose names
    are allowed (``ENV_ALLOWED`` plus the site's ``env_allow``). Nothing else."""
    env = {
        "COMPUTENET_JOB_ID": dispatch.job_id,
        "COMPUTENET_REQUEST_ID": dispatch.request_id,
        "COMPUTENET_TENANT_ID": dispatch.tenant_id,
        "COMPUTENET_ACCELERATORS": str(dispatch.accelerators),
        "COMPUTENET_WALLTIME_S": str(dispatch.walltime_s),
        "COMPUTENET_CHECKPOINTABLE": "1" if dispatch.checkpointable else "0",
    }
    allowed = ENV_ALLOWED | set(options.env_allow)
    extra = {k: v for k, v in dispatch.env.items() if k in allowed and k not in env}
    return env | extra


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


def is_dns_label(text: str) -> bool:
    return len(text) <= LABEL_MAX and bool(_DNS_LABEL.match(text))


def is_label_value(text: str) -> bool:
    return len(text) <= LABEL_MAX and bool(_LABEL_VALUE.match(text))


def is_qualified_name(text: str) -> bool:
    """A label key or resource name: ``[prefix/]name``, prefix a DNS subdomain (<= 253)."""
    prefix, _, name = text.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= LABEL_MAX and bool(_NAME_PART.match(name))


class _OptionReader:
    """Reads one site's executor table; each check names the key and the fix."""

    KEYS = frozenset(KubernetesOptions.__dataclass_fields__)

    def __init__(self, site_id: str, raw: Mapping[str, Any]) -> None:
        self.site_id = site_id
        self.raw = raw

    def fail(self, key: str, message: str, fix: str) -> InputError:
        return InputError(
            message, source="network file", where=f"sites.{self.site_id}.executor.{key}", fix=fix
        )

    def _get(self, key: str, kind: type | tuple[type, ...], default: Any, fix: str) -> Any:
        value = self.raw.get(key, default)
        if value is None:
            return None
        # TOML booleans are ints to Python: a count or number must not be written true/false.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            raise self.fail(key, f"expected {_kind_name(kind)}, found {value!r}", fix)
        return value

    def dns_label(self, key: str, default: str) -> str:
        fix = f'write {key} = "{default}" (lower-case letters, digits and "-", at most 63)'
        value = self._get(key, str, default, fix)
        if not is_dns_label(value):
            raise self.fail(key, f"{value!r} is not a valid Kubernetes name", fix)
        return str(value)

    def image(self, key: str, default: str) -> str:
        fix = f'write {key} = "registry/name:tag", e.g. "{default}"'
        value = self._get(key, str, default, fix)
        if not value or any(c.isspace() or ord(c) < 32 for c in value):
            raise self.fail(key, f"{value!r} is not an image reference", fix)
        return str(value)

    def qualified_name(self, key: str, default: str) -> str:
        value = self.optional_qualified_name(key, default)
        return default if value is None else value

    def optional_qualified_name(self, key: str, default: str | None = None) -> str | None:
        fix = f'write {key} = "example.com/name" (a Kubernetes label key or resource name)'
        value = self._get(key, str, default, fix)
        if value is not None and not is_qualified_name(value):
            raise self.fail(key, f"{value!r} is not a valid Kubernetes qualified name", fix)
        return value

    def optional_label_value(self, key: str) -> str | None:
        fix = f'write {key} = "team-a" (letters, digits, "-", "_", ".", at most 63)'
        value = self._get(key, str, None, fix)
        if value is not None and (not value or not is_label_value(value)):
            raise self.fail(key, f"{value!r} is not a valid label value", fix)
        return value

    def selector(self, key: str) -> dict[str, str]:
        fix = f'write {key} = {{ "nvidia.com/gpu.product" = "NVIDIA-H100-80GB-HBM3" }}'
        table = self._get(key, dict, {}, fix)
        for k, v in table.items():
            if not is_qualified_name(k):
                raise self.fail(key, f"{k!r} is not a valid label key", fix)
            if not isinstance(v, str) or not is_label_value(v):
                raise self.fail(key, f"{k} = {v!r} is not a valid label value", fix)
        return dict(table)

    def value_map(self, key: str) -> dict[str, str]:
        fix = f'write {key} = {{ H100 = "NVIDIA-H100-80GB-HBM3" }} (pool type = node label value)'
        table = self._get(key, dict, {}, fix)
        for k, v in table.items():
            if not isinstance(v, str) or not is_label_value(v):
                raise self.fail(key, f"{k} = {v!r} is not a valid label value", fix)
        return dict(table)

    def tolerations(self, key: str) -> tuple[dict[str, Any], ...]:
        fix = (
            f'write {key} = [{{ key = "nvidia.com/gpu", operator = "Exists", '
            'effect = "NoSchedule" }]'
        )
        items = self._get(key, list, [], fix)
        for item in items:
            if not isinstance(item, dict) or set(item) - _TOLERATION_KEYS:
                raise self.fail(key, f"{item!r} is not a toleration", fix)
            if item.get("operator", "Equal") not in ("Equal", "Exists"):
                raise self.fail(key, f"operator {item['operator']!r} is not Equal or Exists", fix)
            if item.get("effect", "NoSchedule") not in _TAINT_EFFECTS:
                raise self.fail(key, f"effect {item['effect']!r} is not a taint effect", fix)
            seconds = item.get("tolerationSeconds", 0)
            texts = [item.get(k, "") for k in ("key", "value", "operator", "effect")]
            if not all(isinstance(t, str) for t in texts) or type(seconds) is not int:
                raise self.fail(key, f"{item!r}: key, value, operator and effect are text", fix)
            # The API server's own rules for a toleration, checked here at load time.
            if item.get("key") and not is_qualified_name(item["key"]):
                raise self.fail(key, f"{item['key']!r} is not a valid taint key", fix)
            if not item.get("key") and item.get("operator") != "Exists":
                raise self.fail(key, f"{item!r}: a toleration without a key needs Exists", fix)
            if item.get("operator") == "Exists" and item.get("value"):
                raise self.fail(key, f"{item!r}: operator Exists takes no value", fix)
            if "tolerationSeconds" in item and item.get("effect") != "NoExecute":
                raise self.fail(key, f"{item!r}: tolerationSeconds needs NoExecute", fix)
        return tuple(dict(item) for item in items)

    def count(self, key: str, default: int, *, minimum: int = 0) -> int:
        fix = f"write {key} = {default} (a whole number of at least {minimum})"
        value = self._get(key, int, default, fix)
        if value < minimum:
            raise self.fail(key, f"{value} is below {minimum}", fix)
        return int(value)

    def positive_number(self, key: str, default: float) -> float:
        fix = f"write {key} = {default} (seconds, above 0)"
        value = self._get(key, (int, float), default, fix)
        if not value > 0:
            raise self.fail(key, f"{value} is not above 0", fix)
        return float(value)

    def flag(self, key: str) -> bool:
        return bool(self._get(key, bool, False, f"write {key} = true or false"))

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, str, None, f'write {key} = "..." (text)')
        if value is not None and not value:
            raise self.fail(key, "is empty", f"remove {key} or give it a value")
        return value

    def env_names(self, key: str) -> tuple[str, ...]:
        fix = f'write {key} = ["HF_HOME", "WANDB_MODE"] (variable names from the dispatch)'
        names = self._get(key, list, [], fix)
        for name in names:
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(key, f"{name!r} is not an environment variable name", fix)
        return tuple(names)

    def host(self, key: str) -> str | None:
        fix = f'write {key} = "https://api.example.com:6443" (or use kubeconfig instead)'
        value = self._get(key, str, None, fix)
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise self.fail(key, f"{value!r} is not an http(s) URL", fix)
        return value

    def no_unknown_keys(self) -> None:
        unknown = sorted(set(self.raw) - self.KEYS)
        if unknown:
            raise self.fail(
                unknown[0],
                "unknown option of the kubernetes executor",
                f"use one of: {', '.join(sorted(self.KEYS))}",
            )

    def one_way_to_connect(self, options: KubernetesOptions) -> None:
        ways = [k for k in ("host", "kubeconfig", "in_cluster") if getattr(options, k)]
        if len(ways) > 1:
            raise self.fail(
                ways[1],
                f"{' and '.join(ways)} are both set; the executor connects one way",
                "keep one of host, kubeconfig (with context) or in_cluster = true",
            )
        if options.context and (options.host or options.in_cluster):
            raise self.fail(
                "context", "a context belongs to a kubeconfig", "remove context or host"
            )


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    names |= {dict: "a table", list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in _kinds(kind))
