"""Regenerate notebooks/*.ipynb from their paired py:percent files (the source of truth).

    python scripts/sync_notebooks.py          # write the .ipynb files
    python scripts/sync_notebooks.py --check  # exit 1 if any pair is out of sync

The .ipynb files are committed without outputs and with the metadata papermill
needs (`kernelspec` and `language_info`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_from_py(py: Path) -> nbformat.NotebookNode:
    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{py.stem[:20]}-{i:02d}"  # stable ids: the committed file does not churn
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    stale = []
    for py in sorted(NOTEBOOKS.glob("*.py")):
        ipynb = py.with_suffix(".ipynb")
        text = nbformat.writes(notebook_from_py(py)) + "\n"
        if args.check:
            if not ipynb.exists() or ipynb.read_text() != text:
                stale.append(ipynb.name)
        else:
            ipynb.write_text(text)
    if stale:
        print("out of sync with their .py pair: " + ", ".join(stale) + " (run scripts/sync_notebooks.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
