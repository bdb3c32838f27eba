"""Builds throwaway `.cloud/infra` projects following the contract in docs/architecture.md
(Pulumi.yaml named after the slug, the two-line __main__.py, one Pulumi.<env>.yaml per stack),
so these tests do not depend on the template's files."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_fixtures import write_project


@pytest.fixture
def project(tmp_path):
    """project(stacks, slug=...) -> the infra folder."""
    counter = iter(range(1000))

    def make(stacks: dict[str, dict], **kwargs) -> Path:
        return write_project(tmp_path / f"infra{next(counter)}", stacks, **kwargs)

    return make
