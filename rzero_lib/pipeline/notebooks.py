"""The stage notebooks: where they are, and the notebook papermill runs from each.

The notebooks are py:percent files (jupytext), tracked without any .ipynb: JupyterLab opens them as
notebooks, and `stage_notebook` builds the notebook papermill executes. They ship as the package data
`rzero_lib.notebooks` (pyproject maps the repository's notebooks/ folder to it), so an installed `rzero`
finds them wherever it runs; in an editable install the same lookup gives the repository's folder.
$RZERO_NOTEBOOKS_DIR, when set, names another folder holding them (a fork's notebooks, for instance).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path

NOTEBOOKS_ENV = "RZERO_NOTEBOOKS_DIR"
NOTEBOOKS_PACKAGE = "rzero_lib.notebooks"
# What papermill needs to start the kernel (jupytext.toml keeps only the kernelspec in the .py files).
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class NotebooksNotFound(FileNotFoundError):
    """A stage notebook is not where the package (or $RZERO_NOTEBOOKS_DIR) says it is."""


def notebooks_dir() -> Path:
    """$RZERO_NOTEBOOKS_DIR, else the installed package data (the repository's notebooks/ when editable)."""
    env = os.environ.get(NOTEBOOKS_ENV)
    if env:
        return Path(env).expanduser()
    try:
        return Path(str(files(NOTEBOOKS_PACKAGE)))
    except ModuleNotFoundError:
        raise NotebooksNotFound(f"the stage notebooks are not installed ({NOTEBOOKS_PACKAGE} is missing): "
                                f"reinstall rzero, or set {NOTEBOOKS_ENV} to a folder holding them") from None


def check_notebooks(paths: Iterable[Path]) -> None:
    """Refuse, before anything is written, when a stage notebook is missing."""
    missing = sorted({str(p) for p in paths if not Path(p).is_file()})
    if missing:
        hint = (f"{NOTEBOOKS_ENV} is set: it must name a folder holding them" if os.environ.get(NOTEBOOKS_ENV)
                else "is the installation complete? (pip install . ships them as package data)")
        raise NotebooksNotFound("stage notebooks not found: " + ", ".join(missing) + f" ({hint})")


def stage_notebook(path: str | Path):
    """The py:percent notebook at `path` as the notebook papermill executes (with the kernel metadata)."""
    import jupytext

    nb = jupytext.read(Path(path))
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb
