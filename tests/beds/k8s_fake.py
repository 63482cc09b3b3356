"""A small in-process fake of the Kubernetes API endpoints the ``kubernetes`` executor calls.

No API server can run on these machines, so the executor's tests run against this: an HTTP
server on 127.0.0.1 speaking the same paths, query parameters, JSON objects and ``Status``
errors as a real API server, for

- ``GET /version``
- ``POST|GET /apis/batch/v1/namespaces/{ns}/jobs`` (create; list with ``labelSelector`` and
  ``limit``), ``GET|DELETE .../jobs/{name}`` (404 when missing, 409 on a duplicate name)
- ``GET /api/v1/namespaces/{ns}/pods`` (``labelSelector``, e.g. ``job-name=...``) and
  ``GET .../pods/{name}/log`` (400 while the container has not started)

and a controller the test drives by hand (``run``, ``complete``, ``fail``, ``admit``), as
the Job controller, the kubelet and Kueue would. Every created Job is validated as an API
server would: against the Kubernetes JSON schema of a stated version (``kubernetes-validate``,
strict: no unknown fields) and by the rules the schema cannot express (names, label keys and
values, restart policy, extended resources whole and with requests equal to limits, positive
deadlines), written here independently of the executor's own name code; an invalid Job is
answered 422 with a ``Status`` naming the field, as a real server does.

What it is not: no scheduler, no nodes, no admission plugins other than an optional Kueue
webhook (``kueue=True`` suspends Jobs that carry a queue label), no watch, no auth.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.resources
import itertools
import json
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

_JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?$")
_PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)(/log)?)?$")

# apimachinery's validation rules (k8s.io/apimachinery/pkg/util/validation).
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_WHOLE = re.compile(r"^[0-9]+$")
_LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character, with an optional DNS subdomain prefix and '/'"
)
_NATIVE_RESOURCES = {"cpu", "memory", "ephemeral-storage", "pods"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """A ``meta/v1 Status`` as the API server answers errors."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.body = status_body(code, reason, message, **details)
        self.code = code


# -- validation ---------------------------------------------------------------------------


def validate_job(job: dict[str, Any], namespace: str, version: str) -> None:
    """Raise ``ApiError`` 422/400 as the API server would for an invalid Job."""
    name = (job.get("metadata") or {}).get("name", "")
    errors = sorted(job_schema(version).iter_errors(job), key=lambda e: list(map(str, e.path)))
    if errors:
        field = ".".join(str(p) for p in errors[0].path) or "<root>"
        raise _invalid(name, [(field, errors[0].message)])
    problems = list(_job_problems(job))
    if problems:
        raise _invalid(name, problems)
    if job["metadata"].get("namespace", namespace) != namespace:
        raise ApiError(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        )


@functools.cache
def job_schema(version: str) -> Any:
    """The strict ``batch/v1`` Job schema of Kubernetes ``version`` shipped in
    ``kubernetes-validate`` (as its ``validate(..., strict=True)`` loads it), built once:
    loading the 1.2 MB definitions takes 50 ms, too slow to repeat for every request."""
    root = importlib.resources.files(kubernetes_validate) / "kubernetes-json-schema"
    folder = root / f"v{version}.0-local-strict"
    schema = json.loads((folder / "job-batch-v1.json").read_text())
    definitions = json.loads((folder / "_definitions.json").read_text())
    # Both files carry their ``$id``; the Job schema's ``$ref``s resolve against them.
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _invalid(name: str, problems: list[tuple[str, str]]) -> ApiError:
    causes = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in problems]
    text = ", ".join(f"{f}: {m}" for f, m in problems)
    return ApiError(
        422,
        "Invalid",
        f'Job.batch "{name}" is invalid: [{text}]'
        if len(problems) > 1
        else f'Job.batch "{name}" is invalid: {text}',
        name=name,
        group="batch",
        kind="Job",
        causes=causes,
    )


def _job_problems(job: dict[str, Any]) -> Iterator[tuple[str, str]]:
    meta = job["metadata"]
    name = meta.get("name", "")
    # A Job's name becomes a pod label value (job-name), so it must be a DNS-1123 label.
    if not name:
        yield "metadata.name", "Required value: name or generateName is required"
    elif len(name) > 63 or not _DNS1123_LABEL.match(name):
        yield "metadata.name", f"Invalid value: {name!r}: must be a valid DNS-1123 label"
    yield from _label_problems("metadata.labels", meta.get("labels") or {})
    yield from _annotation_problems("metadata.annotations", meta.get("annotations") or {})
    spec = job["spec"]
    for key in ("backoffLimit", "completions", "parallelism", "ttlSecondsAfterFinished"):
        if key in spec and spec[key] < 0:
            yield f"spec.{key}", f"Invalid value: {spec[key]}: must be greater than or equal to 0"
    if "activeDeadlineSeconds" in spec and spec["activeDeadlineSeconds"] <= 0:
        yield "spec.activeDeadlineSeconds", "Invalid value: must be greater than 0"
    template = spec["template"]
    labels = (template.get("metadata") or {}).get("labels") or {}
    yield from _label_problems("spec.template.metadata.labels", labels)
    yield from _pod_problems("spec.template.spec", template.get("spec") or {})


def _pod_problems(where: str, pod: dict[str, Any]) -> Iterator[tuple[str, str]]:
    policy = pod.get("restartPolicy")
    if policy not in ("Never", "OnFailure"):
        yield f"{where}.restartPolicy", f'Unsupported value: "{policy}": "OnFailure", "Never"'
    yield from _label_problems(f"{where}.nodeSelector", pod.get("nodeSelector") or {})
    for i, toleration in enumerate(pod.get("tolerations") or []):
        yield from _toleration_problems(f"{where}.tolerations[{i}]", toleration)
    names = set()
    for i, container in enumerate(pod.get("containers") or []):
        at = f"{where}.containers[{i}]"
        cname = container.get("name", "")
        if not _DNS1123_LABEL.match(cname) or len(cname) > 63:
            yield f"{at}.name", f"Invalid value: {cname!r}: must be a valid DNS-1123 label"
        if cname in names:
            yield f"{at}.name", f"Duplicate value: {cname!r}"
        names.add(cname)
        if not (container.get("image") or "").strip():
            yield f"{at}.image", "Required value"
        for j, env in enumerate(container.get("env") or []):
            if not _ENV_VAR_NAME.match(env.get("name", "")):
                yield f"{at}.env[{j}].name", f"Invalid value: {env.get('name')!r}"
        yield from _resource_problems(f"{at}.resources", container.get("resources") or {})


def _toleration_problems(where: str, toleration: dict[str, Any]) -> Iterator[tuple[str, str]]:
    key, operator = toleration.get("key", ""), toleration.get("operator", "Equal")
    if key and not _qualified(key):
        yield f"{where}.key", f"Invalid value: {json.dumps(key)}: {_QUALIFIED_NAME_RULE}"
    if operator not in ("Equal", "Exists"):
        yield f"{where}.operator", f'Unsupported value: "{operator}": "Equal", "Exists"'
    if operator == "Exists" and toleration.get("value"):
        yield f"{where}.operator", "Invalid value: value must be empty when `operator` is 'Exists'"
    if not key and operator != "Exists":
        yield f"{where}.operator", "Invalid value: operator must be Exists when `key` is empty"
    effect = toleration.get("effect", "")
    if effect not in ("", "NoSchedule", "PreferNoSchedule", "NoExecute"):
        yield f"{where}.effect", f'Unsupported value: "{effect}"'
    if "tolerationSeconds" in toleration and effect != "NoExecute":
        yield (
            f"{where}.effect",
            "Invalid value: effect must be 'NoExecute' when `tolerationSeconds` is set",
        )


def _resource_problems(where: str, resources: dict[str, Any]) -> Iterator[tuple[str, str]]:
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for kind, table in (("limits", limits), ("requests", requests)):
        for res, qty in table.items():
            if not _qualified(res):
                yield f"{where}.{kind}[{res}]", "Invalid value: must be a qualified name"
            if res in _NATIVE_RESOURCES:
                continue
            # Extended resources (nvidia.com/gpu) are whole, never fractional or negative.
            if not _WHOLE.match(str(qty)):
                yield f"{where}.{kind}[{res}]", f"Invalid value: {qty!r}: must be an integer"
    for res in set(limits) | set(requests):
        if res in _NATIVE_RESOURCES:
            continue
        if res in limits and res in requests and str(limits[res]) != str(requests[res]):
            yield f"{where}.requests[{res}]", "Invalid value: must be equal to limits"
        if res in requests and res not in limits:
            yield f"{where}.limits", f"Required value: Limit must be set for {res}"


def _label_problems(where: str, labels: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in labels.items():
        if not _qualified(key):
            yield where, f"Invalid value: {json.dumps(key)}: {_QUALIFIED_NAME_RULE}"
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            yield f"{where}", f"Invalid value: {json.dumps(value)}: {_LABEL_VALUE_RULE}"


def _annotation_problems(where: str, annotations: dict[str, Any]) -> Iterator[tuple[str, str]]:
    size = 0
    for key, value in annotations.items():
        if not _qualified(key):
            yield where, f"Invalid value: {json.dumps(key)}: {_QUALIFIED_NAME_RULE}"
        size += len(key) + len(str(value))
    if size > 256 * 1024:
        yield where, "Too long: must have at most 262144 bytes"


def _qualified(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


def parse_selector(text: str) -> dict[str, str]:
    """An equality-based label selector (``a=b,c==d``); other forms are refused (400)."""
    wanted: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.match(r"^([^=!\s]+)\s*==?\s*([^=!\s]*)$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
        wanted[m.group(1)] = m.group(2)
    return wanted


def _matches(obj: dict[str, Any], wanted: dict[str, str]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


# -- the fake -----------------------------------------------------------------------------


class FakeKubernetes:
    """The API objects, the HTTP server and the hand-driven controller."""

    def __init__(self, version: str = "1.30", *, kueue: bool = False) -> None:
        self.version = version
        self.kueue = kueue
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self.created = 0  # Jobs created (a repeat of the same dispatch must not add one)
        # (verb, resource) pairs RBAC refuses, as for a service account lacking a Role rule.
        self.forbidden: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self._serial = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    # -- life ------------------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop as a dead API server does: no listener, and open connections cut (the
        client's pool keeps connections alive, which would otherwise still be served)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self.lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._connections.clear()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- the API ---------------------------------------------------------------------------

    def authorize(self, method: str, path: str) -> None:
        """403 as RBAC answers, for the (verb, resource) pairs in ``forbidden``."""
        jobs, pods = _JOBS.match(path), _PODS.match(path)
        match = jobs or pods
        if match is None:
            return
        namespace, name = match.group(1), match.group(2)
        resource = "jobs" if jobs else ("pods/log" if pods and pods.group(3) else "pods")
        verbs = {"POST": "create", "DELETE": "delete"}
        verb = verbs.get(method) or ("get" if name and resource != "pods/log" else "list")
        verb = "get" if resource == "pods/log" else verb
        if (verb, resource) in self.forbidden:
            group = "batch" if jobs else ""
            raise ApiError(
                403,
                "Forbidden",
                f'{resource} is forbidden: User "system:serviceaccount:computenet:computenet" '
                f'cannot {verb} resource "{resource}" in API group "{group}" in the namespace '
                f'"{namespace}"',
                kind=resource,
            )

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        validate_job(body, namespace, self.version)
        job = copy.deepcopy(body)
        meta = job["metadata"]
        key = (namespace, meta["name"])
        with self.lock:
            if key in self.jobs:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'jobs.batch "{meta["name"]}" already exists',
                    name=meta["name"],
                    group="batch",
                    kind="jobs",
                )
            meta |= {
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(next(self._serial)),
                "creationTimestamp": now(),
                "generation": 1,
            }
            spec = job["spec"]
            if self.kueue and QUEUE_LABEL in (meta.get("labels") or {}):
                spec["suspend"] = True  # Kueue's mutating webhook
            spec.setdefault("suspend", False)
            spec.setdefault("completionMode", "NonIndexed")
            job["status"] = {}
            if spec["suspend"]:
                job["status"]["conditions"] = [_condition("Suspended", "JobSuspended", "")]
            self.jobs[key] = job
            self.created += 1
            return copy.deepcopy(job)

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get((namespace, name))
            if job is None:
                raise _not_found("jobs.batch", name)
            return copy.deepcopy(job)

    def list_jobs(self, namespace: str, selector: str, limit: int | None) -> dict[str, Any]:
        wanted = parse_selector(selector)
        with self.lock:
            items = [
                copy.deepcopy(j)
                for (ns, _), j in sorted(self.jobs.items())
                if ns == namespace and _matches(j, wanted)
            ]
        meta: dict[str, Any] = {"resourceVersion": str(next(self._serial))}
        if limit and len(items) > limit:
            items, meta["continue"] = items[:limit], "fake-continue-token"
        return {"kind": "JobList", "apiVersion": "batch/v1", "metadata": meta, "items": items}

    def delete_job(self, namespace: str, name: str, propagation: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.pop((namespace, name), None)
            if job is None:
                raise _not_found("jobs.batch", name)
            if propagation != "Orphan":  # the garbage collector removes the pods
                for key in [k for k, p in self.pods.items() if _owned_by(p, job)]:
                    self.pods.pop(key)
        return status_body(
            200, "", "", name=name, group="batch", kind="jobs", uid=job["metadata"]["uid"]
        )

    def list_pods(self, namespace: str, selector: str) -> dict[str, Any]:
        wanted = parse_selector(selector)
        with self.lock:
            items = [
                copy.deepcopy(p)
                for (ns, _), p in sorted(self.pods.items())
                if ns == namespace and _matches(p, wanted)
            ]
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}

    def pod_log(self, namespace: str, pod: str, container: str | None) -> str:
        with self.lock:
            found = self.pods.get((namespace, pod))
            if found is None:
                raise _not_found("pods", pod)
            names = [c["name"] for c in found["spec"]["containers"]]
            if container is None and len(names) == 1:
                container = names[0]
            if container not in names:
                raise ApiError(
                    400, "BadRequest", f"container {container} is not valid for pod {pod}"
                )
            if found["status"]["phase"] == "Pending":
                raise ApiError(
                    400,
                    "BadRequest",
                    f'container "{container}" in pod "{pod}" is waiting to start: '
                    "ContainerCreating",
                )
            return self.logs.get((namespace, pod), "")

    # -- the controller, driven by the test ------------------------------------------------

    def admit(self, namespace: str, name: str) -> None:
        """Kueue admits the Job: it is unsuspended."""
        with self.lock:
            job = self.jobs[(namespace, name)]
            job["spec"]["suspend"] = False
            job["status"]["conditions"] = [
                c for c in job["status"].get("conditions", []) if c["type"] != "Suspended"
            ]

    def run(self, namespace: str, name: str, *, ready: bool = True, log: str = "") -> str:
        """The Job controller creates its pod; the kubelet starts it when ``ready``."""
        with self.lock:
            job = self.jobs[(namespace, name)]
            if job["spec"]["suspend"]:
                raise AssertionError(f"Job {name} is suspended; admit it first")
            pod_name = f"{name}-{next(self._serial):05d}"
            template = job["spec"]["template"]
            uid = job["metadata"]["uid"]
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels |= {
                "job-name": name,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "batch.kubernetes.io/controller-uid": uid,
            }
            container = template["spec"]["containers"][0]["name"]
            state = (
                {"running": {"startedAt": now()}}
                if ready
                else {"waiting": {"reason": "ContainerCreating"}}
            )
            self.pods[(namespace, pod_name)] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": labels,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": now(),
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": name,
                            "uid": uid,
                            "controller": True,
                        }
                    ],
                },
                "spec": copy.deepcopy(template["spec"]),
                "status": {
                    "phase": "Running" if ready else "Pending",
                    "containerStatuses": [_container_status(container, state, ready)],
                },
            }
            self.logs[(namespace, pod_name)] = log
            job["status"] |= {"active": 1, "ready": 1 if ready else 0, "startTime": now()}
            return pod_name

    def set_log(self, namespace: str, pod: str, text: str) -> None:
        with self.lock:
            self.logs[(namespace, pod)] = text

    def complete(self, namespace: str, name: str) -> None:
        """The pod exits 0; the Job controller marks the Job Complete."""
        self._finish(namespace, name, 0, _condition("Complete", "", ""), "succeeded")

    def fail(
        self,
        namespace: str,
        name: str,
        *,
        exit_code: int = 1,
        reason: str = "BackoffLimitExceeded",
        message: str = "Job has reached the specified backoff limit",
    ) -> None:
        """The pod fails (or the deadline passes); the Job controller marks it Failed."""
        self._finish(namespace, name, exit_code, _condition("Failed", reason, message), "failed")

    def _finish(
        self, namespace: str, name: str, exit_code: int, condition: dict[str, Any], count: str
    ) -> None:
        with self.lock:
            job = self.jobs[(namespace, name)]
            for pod in self.pods.values():
                if _owned_by(pod, job):
                    pod["status"]["phase"] = "Succeeded" if exit_code == 0 else "Failed"
                    terminated = {
                        "terminated": {
                            "exitCode": exit_code,
                            "finishedAt": now(),
                            "reason": "Completed" if exit_code == 0 else "Error",
                        }
                    }
                    for cs in pod["status"]["containerStatuses"]:
                        cs |= {"state": terminated, "ready": False, "started": False}
            status = job["status"]
            status |= {"active": 0, "ready": 0, count: 1}
            status["conditions"] = [*status.get("conditions", []), condition]
            if count == "succeeded":
                status["completionTime"] = now()


def _condition(kind: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now(),
        "lastTransitionTime": now(),
    }


def _container_status(name: str, state: dict[str, Any], ready: bool) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "ready": ready,
        "started": ready,
        "restartCount": 0,
        "image": "",
        "imageID": "",
    }


def _owned_by(pod: dict[str, Any], job: dict[str, Any]) -> bool:
    refs = pod["metadata"].get("ownerReferences") or []
    return any(r["uid"] == job["metadata"]["uid"] for r in refs)


def _not_found(resource: str, name: str) -> ApiError:
    kind = resource.split(".")[0]
    group = resource.split(".", 1)[1] if "." in resource else ""
    return ApiError(
        404, "NotFound", f'{resource} "{name}" not found', name=name, group=group, kind=kind
    )


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubernetes
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def setup(self) -> None:
        super().setup()
        with self.api.lock:
            self.api._connections.add(self.connection)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body()
        try:
            code, answer = self._route(method, url.path, query, body)
        except ApiError as e:
            code, answer = e.code, e.body
        except (KeyError, TypeError, ValueError) as e:  # a malformed request body
            code, answer = 400, status_body(400, "BadRequest", f"malformed request: {e!r}")
        self._send(code, answer)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        api = self.api
        api.authorize(method, path)
        if path == "/version" and method == "GET":
            major, minor = api.version.split(".")[:2]
            return 200, {"major": major, "minor": minor, "gitVersion": f"v{api.version}.0-fake"}
        if m := _JOBS.match(path):
            namespace, name = m.group(1), m.group(2)
            if name is None and method == "POST":
                return 201, api.create_job(namespace, body)
            if name is None and method == "GET":
                limit = int(query["limit"]) if "limit" in query else None
                return 200, api.list_jobs(namespace, query.get("labelSelector", ""), limit)
            if name is not None and method == "GET":
                return 200, api.get_job(namespace, name)
            if name is not None and method == "DELETE":
                policy = (body or {}).get("propagationPolicy") or query.get(
                    "propagationPolicy", "Background"
                )
                return 200, api.delete_job(namespace, name, policy)
        if (m := _PODS.match(path)) and method == "GET":
            namespace, name, log = m.groups()
            if name is None:
                return 200, api.list_pods(namespace, query.get("labelSelector", ""))
            if log:
                return 200, api.pod_log(namespace, name, query.get("container"))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _send(self, code: int, answer: Any) -> None:
        if isinstance(answer, str):
            data, kind = answer.encode(), "text/plain"
        else:
            data, kind = json.dumps(answer).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
