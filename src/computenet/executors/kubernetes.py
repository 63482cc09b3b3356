"""``kubernetes``: one ``batch/v1`` Job per dispatch, through the official ``kubernetes``
client (imported when an executor of this kind is built: ``pip install
'computenet[kubernetes]'``).

The manifest comes from the pure ``kubernetes_manifest.job_manifest``. A Job is found again
by the label carrying our request id, so a repeated submit (a retry, a restarted service)
creates no second Job; its name is derived from the request id too, so two submits racing
past the lookup meet at the API server's ``409 AlreadyExists``. The site-local id is
``k8s:<site>:<namespace>/<job name>``.

Errors: the API server refusing to create a Job (4xx: invalid, forbidden by a quota or a
policy) is ``ExecutorRefused`` with the server's own message, and that job fails alone; a
server that does not answer, answers 5xx, 401 (credentials) or 429 (throttled), or refuses
a list, read or delete (a site's RBAC, not a job's fault) is ``ExecutorUnavailable``, and
the work is retried.

Not run against a live cluster here: tested against an in-process fake of the endpoints it
calls (``tests/beds/k8s_fake.py``) and with every manifest validated offline against the
Kubernetes 1.30 schema (``kubernetes-validate``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from computenet.errors import (
    ExecutorRefused,
    ExecutorUnavailable,
    InputError,
    MissingDependencyError,
)
from computenet.executors.base import Capabilities, Dispatch, ExecStatus
from computenet.executors.kubernetes_manifest import (
    CONTAINER,
    REQUEST_ANNOTATION,
    KubernetesOptions,
    job_manifest,
    job_name,
    request_selector,
)
from computenet.executors.registry import register

T = TypeVar("T")

# Statuses of a create that say nothing about the Job itself: the same call may work later.
_RETRYABLE = frozenset({401, 408, 429})
_LOG_CHUNK_BYTES = 64 * 1024


@register("kubernetes")
class KubernetesExecutor:
    kind: ClassVar[str] = "kubernetes"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runs_commands=True,
        cancel=True,
        checkpoint_signal=False,  # pods get SIGTERM at deletion, not a warning before the end
        logs=True,
        survives_restart=True,  # the Job is found again by its request-id label
        binds_accelerators=True,  # the device plugin gives each pod its own devices
    )

    def __init__(self, site_id: str, options: Mapping[str, Any], home: Path) -> None:
        self.site_id = site_id
        self.options = KubernetesOptions.parse(site_id, options)
        self.home = Path(home)
        client = _import_client()
        api = _api_client(client, site_id, self.options)
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)
        self._api_error: type[Exception] = client.ApiException
        self._transport_errors = _transport_errors()
        # Cancels seen by this process: a cancelled Job is deleted, so after a restart its
        # request reads as "unknown" (the loop recorded the cancel in its own database).
        self._cancelled: set[str] = set()

    # -- the interface --------------------------------------------------------------------

    def heartbeat(self) -> None:
        """A one-item list of Jobs in the namespace: proves the server answers and our
        credentials may read Jobs there (``/version`` is public, so it would pass with
        expired credentials)."""
        self._call(
            "list Jobs",
            lambda t: self._batch.list_namespaced_job(
                self.options.namespace, limit=1, _request_timeout=t
            ),
        )

    def submit(self, dispatch: Dispatch) -> str:
        """Create the Job of ``dispatch`` unless one already carries its request id."""
        found = self._find(dispatch.request_id)
        if found is not None:
            return self._local_id(found.metadata.name)
        manifest = job_manifest(dispatch, self.options)
        name = manifest["metadata"]["name"]
        created = self._call(
            "create the Job",
            lambda t: self._batch.create_namespaced_job(
                self.options.namespace, manifest, _request_timeout=t
            ),
            tolerate=(409,),
            refusal_fails_job=True,
        )
        if created is None:
            # 409: created by a racing submit since our lookup; it must be this request's.
            self._check_owner(name, dispatch.request_id)
        return self._local_id(name)

    def poll(self, request_id: str, local_id: str | None = None) -> ExecStatus:
        job = self._find(request_id)
        if job is None:
            if request_id in self._cancelled:
                return ExecStatus("cancelled", message="Job deleted by cancel")
            return ExecStatus(
                "unknown",
                message="no Job for this request (never created, cancelled, or removed "
                "after ttl_s)",
            )
        status = job_status(job)
        if status.status == "failed":
            status = ExecStatus(
                "failed",
                exit_code=self._exit_code(job.metadata.name),
                message=status.message,
            )
        return ExecStatus(
            status.status, status.exit_code, status.message, self._local_id(job.metadata.name)
        )

    def cancel(self, request_id: str, local_id: str | None = None) -> None:
        """Delete the Job (its pods go in the background); safe to repeat."""
        self._cancelled.add(request_id)
        name = job_name(request_id)
        self._call(
            "delete the Job",
            lambda t: self._batch.delete_namespaced_job(
                name, self.options.namespace, propagation_policy="Background", _request_timeout=t
            ),
            tolerate=(404,),  # already gone: deleted before, or never created
        )

    def output(self, request_id: str, local_id: str | None, max_bytes: int) -> tuple[str, bool]:
        """The last ``max_bytes`` of the newest pod's log; ``("", False)`` before a pod ran."""
        pod = self._newest_pod(job_name(request_id))
        if pod is None:
            return "", False
        response = self._call(
            "read the pod's log",
            lambda t: self._core.read_namespaced_pod_log(
                pod,
                self.options.namespace,
                container=CONTAINER,
                _preload_content=False,
                _request_timeout=t,
            ),
            tolerate=(400, 404),  # 400: the container has not started; 404: the pod is gone
        )
        if response is None:
            return "", False
        return _tail(response, max_bytes)

    # -- steps ------------------------------------------------------------------------------

    def _local_id(self, name: str) -> str:
        return f"k8s:{self.site_id}:{self.options.namespace}/{name}"

    def _find(self, request_id: str) -> Any:
        """The Job of ``request_id`` or None, by its label (checked against the annotation,
        which holds the exact id when the label had to be hashed)."""
        jobs = self._must(
            "list Jobs",
            lambda t: self._batch.list_namespaced_job(
                self.options.namespace,
                label_selector=request_selector(request_id),
                _request_timeout=t,
            ),
        )
        mine = [j for j in jobs.items if _annotation(j, REQUEST_ANNOTATION) == request_id]
        if not mine:
            return None
        # Two would mean someone copied our labels; the one named by our rule is ours.
        named = [j for j in mine if j.metadata.name == job_name(request_id)]
        return (named or mine)[0]

    def _check_owner(self, name: str, request_id: str) -> None:
        job = self._must(
            "read the Job",
            lambda t: self._batch.read_namespaced_job(
                name, self.options.namespace, _request_timeout=t
            ),
        )
        owner = _annotation(job, REQUEST_ANNOTATION)
        if owner != request_id:
            raise ExecutorRefused(
                f"Job {self.options.namespace}/{name} exists for another request "
                f"({owner!r}); delete it or use another namespace"
            )

    def _pods(self, name: str) -> list[Any]:
        pods = self._must(
            "list pods",
            lambda t: self._core.list_namespaced_pod(
                self.options.namespace, label_selector=f"job-name={name}", _request_timeout=t
            ),
        )
        return list(pods.items)

    def _newest_pod(self, name: str) -> str | None:
        pods = self._pods(name)
        if not pods:
            return None
        # A retried or rescheduled pod is newer; its log is the one that matters now.
        newest = max(pods, key=lambda p: (_created(p), p.metadata.name))
        return str(newest.metadata.name)

    def _exit_code(self, name: str) -> int | None:
        """The exit code of the Job's container, when its pod is still there to say."""
        for pod in self._pods(name):
            for container in (pod.status and pod.status.container_statuses) or []:
                terminated = container.state and container.state.terminated
                if container.name == CONTAINER and terminated is not None:
                    return int(terminated.exit_code)
        return None

    def _call(
        self,
        what: str,
        call: Callable[[Any], T],
        *,
        tolerate: tuple[int, ...] = (),
        refusal_fails_job: bool = False,
    ) -> T | None:
        """Run one API call with the site's timeout; None when the server answers one of the
        ``tolerate`` statuses. Only the creation of a Job is refused for the job's own sake
        (``refusal_fails_job``: a 4xx fails that job alone); any other failure, a 4xx to a
        list or a read included (credentials, RBAC), is the site's, so the work is retried."""
        timeout = (self.options.timeout_s, self.options.timeout_s)
        where = f"Kubernetes API of site {self.site_id}"
        try:
            return call(timeout)
        except self._api_error as e:
            status = int(getattr(e, "status", 0) or 0)
            if status in tolerate:
                return None
            message = _server_message(e)
            if not refusal_fails_job or status == 0 or status >= 500 or status in _RETRYABLE:
                raise ExecutorUnavailable(f"{where}: could not {what} ({status}): {message}") from e
            raise ExecutorRefused(f"{where} refused to {what} ({status}): {message}") from e
        except self._transport_errors as e:  # refused connection, timeout, broken stream
            raise ExecutorUnavailable(f"{where}: could not {what}: {type(e).__name__}: {e}") from e

    def _must(self, what: str, call: Callable[[Any], T]) -> T:
        """``_call`` for calls whose answer is needed (nothing tolerated)."""
        result = self._call(what, call)
        assert result is not None  # only a tolerated status gives None
        return result


def job_status(job: Any) -> ExecStatus:
    """A Job's status in our terms. Conditions decide first (``Complete``/``Failed`` and
    their early forms ``SuccessCriteriaMet``/``FailureTarget``, ``Suspended`` while Kueue
    holds it); then a ready pod means running and anything else pending."""
    status = job.status
    conditions = {
        c.type: c for c in (status and status.conditions) or [] if str(c.status) == "True"
    }
    for kind in ("Failed", "FailureTarget"):
        if kind in conditions:
            c = conditions[kind]
            message = ": ".join(part for part in (c.reason, c.message) if part)
            return ExecStatus("failed", message=message or kind)
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return ExecStatus("succeeded", exit_code=0)
    if "Suspended" in conditions or (job.spec is not None and job.spec.suspend):
        return ExecStatus("pending", message="suspended (waiting for Kueue to admit it)")
    active = (status and status.active) or 0
    ready = status.ready if status is not None else None
    if active and (ready is None or ready > 0):  # ``ready`` is absent before Kubernetes 1.24
        return ExecStatus("running")
    if active:
        return ExecStatus("pending", message="pod created, not ready (scheduling or pulling)")
    return ExecStatus("pending", message="no pod yet")


def _import_client() -> Any:
    try:
        import kubernetes.client  # the official client; an optional extra
        import kubernetes.config
    except ImportError as e:
        raise MissingDependencyError("kubernetes", "kubernetes", "the kubernetes executor") from e
    return kubernetes.client


def _transport_errors() -> tuple[type[Exception], ...]:
    import urllib3  # the client's HTTP library, installed with it

    return (urllib3.exceptions.HTTPError, OSError)


def _api_client(client: Any, site_id: str, options: KubernetesOptions) -> Any:
    """An ApiClient for the one way the site connects: ``host``, ``in_cluster``, or a
    kubeconfig (``kubeconfig``/``context``, else the default ``~/.kube/config``)."""
    import kubernetes.config

    configuration = client.Configuration()
    try:
        if options.host:
            configuration.host = options.host
        elif options.in_cluster:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        else:
            path = str(Path(options.kubeconfig).expanduser()) if options.kubeconfig else None
            kubernetes.config.load_kube_config(
                config_file=path, context=options.context, client_configuration=configuration
            )
    except kubernetes.config.ConfigException as e:
        key = "in_cluster" if options.in_cluster else "kubeconfig"
        raise InputError(
            f"cannot load the Kubernetes configuration: {e}",
            source="network file",
            where=f"sites.{site_id}.executor.{key}",
            fix="point kubeconfig (and context) at a readable kubeconfig, or set host",
        ) from e
    # One quick retry of a dropped connection; a dead server must be reported, not awaited.
    configuration.retries = 1
    return client.ApiClient(configuration)


def _created(obj: Any) -> str:
    stamp = obj.metadata.creation_timestamp
    return "" if stamp is None else stamp.isoformat()


def _annotation(obj: Any, key: str) -> str | None:
    annotations = (obj.metadata and obj.metadata.annotations) or {}
    value = annotations.get(key)
    return None if value is None else str(value)


def _server_message(error: Any) -> str:
    """The API server's own message from its ``Status`` body, else the HTTP reason."""
    body = getattr(error, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
    return str(getattr(error, "reason", "") or "no message")


def _tail(response: Any, max_bytes: int) -> tuple[str, bool]:
    """Read a streamed log keeping only its last ``max_bytes`` (logs can be large)."""
    kept = bytearray()
    cut = False
    try:
        for chunk in response.stream(_LOG_CHUNK_BYTES):
            kept += chunk
            if len(kept) > max_bytes:
                cut = True
                del kept[: len(kept) - max_bytes]
    finally:
        response.release_conn()
    return bytes(kept).decode("utf-8", errors="replace"), cut
