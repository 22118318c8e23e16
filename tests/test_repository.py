"""House rules a reviewer checks: notebook pairs in sync and without outputs, the
conda environment matches pyproject, parameter names stable."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def test_notebook_pairs_in_sync_and_without_outputs():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "sync_notebooks.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert {p.stem for p in notebooks} >= {"01_challenger_training", "02_question_generation", "03_voting",
                                           "04_solver_training", "05_evaluation", "06_analysis"}
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] and nb["metadata"]["language_info"]["name"] == "python"
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") for c in code), f"{nb_path.name} has outputs"
        assert any("parameters" in c["metadata"].get("tags", []) for c in code), f"{nb_path.name}: no parameters cell"
        assert nb_path.with_suffix(".py").exists()


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["gpu"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_name(r) for r in pip_section if not r.startswith("-e")}
    assert any(r.startswith("-e") and "gpu" in r for r in pip_section), "environment.yml installs the gpu extra"
    assert wanted == listed, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"] if isinstance(d, str))
