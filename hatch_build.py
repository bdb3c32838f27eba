"""Wheel build hook: record where the template comes from, for `blueprint new`.

A project made from the wheel's bundled template must record a template source `copier update`
can fetch later (the platform team's git URL and the release tag), never the bundled copy. The
URL is BLUEPRINT_TEMPLATE_SOURCE at build time, else the checkout's `origin` remote (without
credentials); the tag is `v<version>`. Written as mlops_blueprint/_bundled/template-source.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _clean(url: str) -> str:
    """No credentials in the wheel (same rule as mlops_blueprint.commands.new._clean_url)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if parts.scheme.split("+")[-1] in ("http", "https"):
        return urlunsplit(parts._replace(netloc=host))
    if ":" in userinfo:
        return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}@{host}"))
    return url


def _origin(root: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", root, "remote", "get-url", "origin"],
            capture_output=True, text=True, check=False, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        url = os.environ.get("BLUEPRINT_TEMPLATE_SOURCE", "").strip() or _origin(self.root)
        record = {"url": _clean(url) if url else None, "ref": f"v{self.metadata.version}"}
        self._scratch = tempfile.mkdtemp(prefix="blueprint-build-")
        path = Path(self._scratch) / "template-source.json"
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        build_data["force_include"][str(path)] = "mlops_blueprint/_bundled/template-source.json"

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        shutil.rmtree(getattr(self, "_scratch", ""), ignore_errors=True)
