"""The ``slurm`` executor's options, read from a site's ``executor`` table in the network
file; each error names ``sites.<id>.executor.<key>`` and the fix."""

from __future__ import annotations

import math
import pwd
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from computenet.errors import InputError


@dataclass(frozen=True)
class SlurmOptions:
    """One site's Slurm settings, from its ``executor`` table in the network file."""

    conf: Path  # the cluster's slurm.conf; picks the cluster for every client command
    partition: str | None = None  # None: the cluster's default partition
    gres_name: str = "gpu"  # the GRES that counts accelerators
    # Accelerator type (as in the pool, e.g. "H100") -> Slurm GRES type; a type not listed
    # maps to its name in lower case; "" requests untyped GRES (``--gres=gpu:N``).
    gres_types: Mapping[str, str] | None = None
    grace_s: int = 300  # added to the planned run for --time (Slurm counts whole minutes)
    checkpoint_warning_s: int = 120  # checkpointable jobs get SIGUSR1 this long before the end
    account: str | None = None
    qos: str | None = None
    user: str | None = None  # run jobs as this user (sbatch --uid/--gid; the service is root)
    output_dir: Path | None = None  # None: <home>/jobs/<site id>
    command_timeout_s: float = 30.0  # a client command slower than this: site unavailable
    heartbeat_timeout_s: float = 5.0
    job_path: str = "/usr/local/bin:/usr/bin:/bin"  # PATH of the job's environment
    # The cluster's job-completion file as seen from the service (None: JobCompLoc of the
    # conf when JobCompType=jobcomp/filetxt; "": do not read one).
    jobcomp_file: str | None = None
    accounting: bool | None = None  # use sacct (None: when the conf names accounting storage)

    KEYS: ClassVar[tuple[str, ...]] = (
        "conf",
        "partition",
        "gres_name",
        "gres_types",
        "grace_s",
        "checkpoint_warning_s",
        "account",
        "qos",
        "user",
        "output_dir",
        "command_timeout_s",
        "heartbeat_timeout_s",
        "job_path",
        "jobcomp_file",
        "accounting",
    )

    @classmethod
    def parse(cls, site_id: str, options: Mapping[str, Any]) -> SlurmOptions:
        """Read and check a site's options; each error names ``sites.<id>.executor.<key>``."""
        read = _OptionReader(site_id, options)
        read.known(cls.KEYS)
        conf = Path(read.text("conf", None, example='"/etc/slurm/slurm.conf"') or "")
        if not str(conf) or conf == Path():
            raise read.error("conf", "is missing", 'add conf = "/path/to/slurm.conf"')
        if not conf.is_file():
            raise read.error(
                "conf", f"{str(conf)!r} is not a file", "give the path of the cluster's slurm.conf"
            )
        user = read.text("user", None, example='"computenet"')
        if user is not None:
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise read.error(
                    "user", f"no user {user!r} on this machine", "create it or leave user out"
                ) from None
        output_dir = read.text("output_dir", None, example='"/shared/computenet/jobs"')
        return cls(
            conf=conf.resolve(),
            partition=read.text("partition", None, example='"gpu"'),
            gres_name=read.text("gres_name", "gpu", example='"gpu"') or "gpu",
            gres_types=read.text_table("gres_types", example='{ H100 = "h100" }'),
            grace_s=read.whole("grace_s", 300, lo=0, hi=7 * 86400),
            # Slurm's --signal takes at most 65535 seconds.
            checkpoint_warning_s=read.whole("checkpoint_warning_s", 120, lo=1, hi=65535),
            account=read.text("account", None, example='"ml"'),
            qos=read.text("qos", None, example='"normal"'),
            user=user,
            output_dir=Path(output_dir) if output_dir else None,
            command_timeout_s=read.seconds("command_timeout_s", 30.0),
            heartbeat_timeout_s=read.seconds("heartbeat_timeout_s", 5.0),
            accounting=read.flag("accounting"),
            jobcomp_file=read.text("jobcomp_file", None, example='"/shared/slurm/jobcomp.txt"'),
            job_path=read.text("job_path", cls.job_path, example='"/usr/bin:/bin"') or cls.job_path,
        )

    def gres_type(self, accelerator: str | None) -> str:
        """The Slurm GRES type for a pool's accelerator ("" for untyped GRES)."""
        if accelerator is None:
            return ""
        mapped = (self.gres_types or {}).get(accelerator)
        return accelerator.lower() if mapped is None else mapped


class _OptionReader:
    """Typed getters over one site's executor table; errors name the key and the fix."""

    def __init__(self, site_id: str, options: Mapping[str, Any]) -> None:
        self.site_id = site_id
        self.options = options

    def error(self, key: str, message: str, fix: str) -> InputError:
        return InputError(
            f"{key} {message}",
            source="network file",
            where=f"sites.{self.site_id}.executor.{key}",
            fix=fix,
        )

    def known(self, keys: Sequence[str]) -> None:
        for key in self.options:
            if key not in keys:
                raise self.error(
                    key, "is not a slurm executor option", f"use one of: {', '.join(keys)}"
                )

    def text(self, key: str, default: str | None, *, example: str) -> str | None:
        value = self.options.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"must be text, found {value!r}", f"write {key} = {example}")
        return value

    def text_table(self, key: str, *, example: str) -> dict[str, str] | None:
        value = self.options.get(key)
        if value is None:
            return None
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        if not ok:
            raise self.error(
                key, f"must be a table of text, found {value!r}", f"write {key} = {example}"
            )
        return dict(value)

    def flag(self, key: str) -> bool | None:
        value = self.options.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.error(key, f"must be true or false, found {value!r}", f"write {key} = true")
        return value

    def whole(self, key: str, default: int, *, lo: int, hi: int) -> int:
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.error(
                key,
                f"must be a whole number of seconds from {lo} to {hi}, found {value!r}",
                f"write {key} = {default}",
            )
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.options.get(key, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        if not ok or not math.isfinite(value):
            raise self.error(
                key, f"must be a positive number of seconds, found {value!r}", f"write {key} = 10"
            )
        return float(value)
