"""House rules a reviewer checks: the stage notebooks are stable py:percent sources, the package lists every
sub-package, the conda environment matches pyproject, parameter names stable."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
# What JupyterLab's kernel adds to a notebook's metadata; jupytext.toml must keep all of it out of the .py.
LAB_METADATA = {"language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                                  "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                                  "pygments_lexer": "ipython3", "version": "3.11.7"}}


def stage_notebook_files() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.py") if p.name != "__init__.py")


def test_stage_notebooks_are_py_percent_files_that_saving_leaves_unchanged():
    """No .ipynb is tracked; each .py, read as JupyterLab reads it and written back as JupyterLab's save
    writes it (jupytext with the folder's jupytext.toml, after the kernel added its metadata), is the same
    text byte for byte: opening, running and saving a notebook in Lab changes no tracked file."""
    import jupytext
    from jupytext.config import load_jupytext_config

    assert not list(NOTEBOOKS.glob("*.ipynb")), "no .ipynb is tracked: the pipeline builds them from the .py"
    config = load_jupytext_config(str(NOTEBOOKS))
    assert config is not None, "notebooks/jupytext.toml is missing"
    stages = stage_notebook_files()
    assert {p.stem for p in stages} >= {"01_challenger_training", "02_question_generation", "03_voting",
                                        "04_solver_training", "05_evaluation", "06_analysis"}
    for py in stages:
        text = py.read_text()
        nb = jupytext.reads(text, fmt="py:percent", config=config)
        # Lab starts the kernel without asking, and writes back ipykernel's own display name
        assert nb.metadata["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python",
                                             "name": "python3"}, py.name
        nb.metadata.update(LAB_METADATA)
        assert jupytext.writes(nb, fmt="py:percent", config=config) == text, f"saving {py.name} from Lab changes it"
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, f"{py.name}: one parameters cell"
        if py.stem not in ("07_sandbox_comparison", "10_supervised_comparison"):  # they read several runs
            # None: the run of $RZERO_RUN_DIR; no "=" in the comment (papermill would skip the line)
            assert re.search(r"^run_dir = None(  # [^=\n]*)?$", params[0].source, re.M), py.name


def test_every_stage_notebook_of_the_driver_exists():
    from rzero_lib.pipeline.driver import NOTEBOOKS as DRIVER_NOTEBOOKS
    from rzero_lib.pipeline.notebooks import notebooks_dir

    assert notebooks_dir().resolve() == NOTEBOOKS.resolve(), "the editable install finds notebooks/"
    assert {NOTEBOOKS / name for name in DRIVER_NOTEBOOKS.values()} <= set(stage_notebook_files())


def package_folder(package: str) -> Path:
    return NOTEBOOKS if package == "rzero_lib.notebooks" else REPO.joinpath(*package.split("."))


def test_the_package_lists_every_sub_package_and_its_data():
    """pyproject lists the packages (notebooks/ installs as rzero_lib.notebooks); a new folder under
    rzero_lib/ must be listed or `pip install .` would leave it out."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(d.relative_to(REPO).parts) for d in (REPO / "rzero_lib").rglob("*")
               if d.is_dir() and d.name != "__pycache__" and any(f.is_file() for f in d.iterdir())}
    on_disk.add("rzero_lib")
    assert set(tool["packages"]) == on_disk | {"rzero_lib.notebooks"}
    assert tool["package-dir"] == {"rzero_lib.notebooks": "notebooks"}
    data = tool["package-data"]
    for package, patterns in data.items():
        assert all(list(package_folder(package).glob(p)) for p in patterns), f"{package}: a pattern matches nothing"
    for package in tool["packages"]:  # every folder that holds no Python is data and is declared as such
        if not (package_folder(package) / "__init__.py").exists():
            assert package in data, f"{package} holds data files that package-data does not declare"


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["gpu"]}
    assert "jupyterlab" in wanted and "jupytext" in wanted  # make lab; jupytext brings its Lab extension
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_name(r) for r in pip_section if not r.startswith("-e")}
    assert any(r.startswith("-e") and "gpu" in r for r in pip_section), "environment.yml installs the gpu extra"
    assert wanted == listed, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"] if isinstance(d, str))
