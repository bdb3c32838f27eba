"""Pins from one place: every step environment and the serving environment install exactly the
versions pyproject.toml pins, so local tests run what the Azure ML jobs and deployments run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STEPS = ("prep", "train", "evaluate", "register", "score")
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def pins() -> dict[str, str]:
    """name -> exact version, from the dependencies and every extra of pyproject.toml."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    exact = {}
    for text in requirements:
        requirement = Requirement(text)
        (spec, *rest) = list(requirement.specifier) or [None]
        if spec is not None and spec.operator == "==" and not rest:
            name = requirement.name.lower()
            assert exact.get(name, spec.version) == spec.version, f"{name}: two different pins"
            exact[name] = spec.version
    return exact


def test_pyproject_pins_each_package_once():
    assert {"scikit-learn", "azureml-inference-server-http"} <= set(pins())


def conda_pip_packages(step: str) -> list[str]:
    conda = yaml.safe_load((PROJECT_ROOT / "code" / step / "environment.yml").read_text())
    return next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))


@pytest.mark.parametrize("step", STEPS)
def test_every_package_of_a_step_environment_is_pinned_in_pyproject(step):
    pinned = pins()
    for text in conda_pip_packages(step):
        requirement = Requirement(text)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{step}: pin {text} exactly"
        name = requirement.name.lower()
        assert name in pinned, f"{step}: {name} is not pinned in pyproject.toml"
        assert specs[0].version == pinned[name], (
            f"{step}: {text}, but pyproject.toml pins {name}=={pinned[name]}"
        )


def test_the_model_runtime_is_the_same_in_every_step_and_in_serving():
    runtime = {"scikit-learn", "pandas", "numpy"}
    seen = {name: set() for name in runtime}
    for step in STEPS:
        for text in conda_pip_packages(step):
            requirement = Requirement(text)
            if requirement.name in runtime:
                seen[requirement.name].add(str(requirement.specifier))
    assert all(len(versions) == 1 for versions in seen.values()), seen


def test_local_installs_get_the_pinned_runtime():
    from importlib.metadata import version

    for name in ("scikit-learn", "pandas", "numpy", "mlflow-skinny"):
        assert version(name) == pins()[name], f"installed {name} differs from the pin"


def test_the_python_of_the_environments_is_one_the_project_supports():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for step in STEPS:
        conda = yaml.safe_load((PROJECT_ROOT / "code" / step / "environment.yml").read_text())
        python = next(d for d in conda["dependencies"] if str(d).startswith("python="))
        minor = re.match(r"python=3\.(\d+)", python).group(1)
        assert f"3.{minor}" >= "3.10" and ">=3.10" in project["requires-python"]
