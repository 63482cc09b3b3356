"""Every error computenet raises on purpose, in one place.

Each message says what is wrong, where, and what to do about it. The CLI prints
``str(error)`` without a trace; the API maps these classes to HTTP statuses in one place.
"""

from __future__ import annotations

from collections.abc import Iterable


class ComputenetError(Exception):
    """Root of every deliberate computenet error."""


class InputError(ComputenetError):
    """Bad user input: a file, a flag, a request body.

    ``source`` names the file or flag, ``where`` the place inside it (a TOML table,
    a CSV line, a field), ``fix`` what the user should change.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        where: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.where = where
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        head = ": ".join(part for part in (self.source, self.where) if part)
        text = f"{head}: {self.message}" if head else self.message
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


class NetworkFileError(InputError):
    """A network (catalog) file is malformed or inconsistent."""


class SignalFileError(InputError):
    """A signal series file has a wrong header, a gap, or bad timestamps."""


class TraceFileError(InputError):
    """A workload trace file cannot be read."""


class UnknownNameError(InputError):
    """A name (policy, network, executor, site, ...) that is not registered."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], *, source: str | None = None):
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(
            f"unknown {kind} {name!r}",
            source=source,
            fix=f"use one of: {', '.join(self.valid) or '(none registered)'}",
        )


class NotFoundError(ComputenetError):
    """A resource id that does not exist (or is not visible to the caller)."""


class ConflictError(ComputenetError):
    """A request that contradicts the current state (e.g. a forbidden job transition)."""


class AuthError(ComputenetError):
    """Missing or invalid credentials."""


class ForbiddenError(ComputenetError):
    """Valid credentials, but the role may not do this."""


class MissingDependencyError(ComputenetError):
    """An optional dependency is needed for the chosen feature."""

    def __init__(self, package: str, extra: str, feature: str):
        super().__init__(
            f"{feature} needs the package {package!r}. "
            f"Install it with: pip install 'computenet[{extra}]'"
        )


class ExecutorRefused(ComputenetError):
    """An executor's engine refused one job (bad gang size, unknown partition, ...): that job
    fails with the engine's message; the loop goes on with the others."""


class ExecutorUnavailable(ComputenetError):
    """An executor's engine does not answer (daemon down, API unreachable): the work is
    retried, and a site whose engine stays silent past the heartbeat timeout is marked down."""
