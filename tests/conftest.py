"""Shared test setup: the repository root, and copier and git isolated from the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _isolate_copier_and_git(tmp_path_factory):
    """No user copier settings, no user or system git config, a fixed git identity.

    Copier reads `COPIER_SETTINGS_PATH` (user defaults, trusted templates) and git reads the
    global config (hooks, signing, default branch); either would make a render depend on the
    machine running the tests.
    """
    home = tmp_path_factory.mktemp("isolated-home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPIER_SETTINGS_PATH", str(home / "no-such-copier-settings.yml"))
        patch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        # `blueprint new` records this URL in projects; the tests choose their own source.
        patch.delenv("BLUEPRINT_TEMPLATE_SOURCE", raising=False)
        # Previews run in each command's own pool: no test leaves a preview server behind
        # (tests/cli/test_preview_server.py switches it on where it is the subject).
        patch.setenv("BLUEPRINT_PREVIEW_SERVER", "off")
        for role in ("AUTHOR", "COMMITTER"):
            patch.setenv(f"GIT_{role}_NAME", "Blueprint Tests")
            patch.setenv(f"GIT_{role}_EMAIL", "tests@example.invalid")
        yield
