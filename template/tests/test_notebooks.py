"""Notebooks are valid nbformat 4, live in a per-person folder, and the example runs offline."""

import json
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.rglob("*.ipynb"))


def test_there_is_an_example_notebook():
    assert NOTEBOOKS_DIR / "example" / "example.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(NOTEBOOKS_DIR)))
def test_notebooks_are_nbformat_4_in_a_personal_folder_without_outputs(path):
    notebook = json.loads(path.read_text())
    assert notebook["nbformat"] == 4
    assert len(path.relative_to(NOTEBOOKS_DIR).parts) == 2, "use notebooks/<alias>/<name>.ipynb"
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("markdown", "code", "raw")
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: clear outputs before committing"
            compile("".join(cell["source"]), str(path), "exec")


def test_the_example_notebook_runs_offline(monkeypatch, capsys):
    notebook = json.loads((NOTEBOOKS_DIR / "example" / "example.ipynb").read_text())
    monkeypatch.chdir(NOTEBOOKS_DIR / "example")
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "example.ipynb", "exec"), namespace)
    assert namespace["SUBMIT"] is False, "the example must not submit anything by default"
    assert set(namespace["job"].jobs) == {"prep", "train", "evaluate", "register"}
    assert "test ROC AUC" in capsys.readouterr().out
