"""`report.html`: the executed analysis notebook as a report that renders offline.

No code (inputs and prompts hidden; the parameters cells, which hold a machine's paths, removed), the
cells tagged `interactive` (the widget explorer, which needs a live kernel) removed, figures embedded
with the alt text their outputs carry, a real page title, and no script at all: the nbconvert template
`templates/rzero_report` is JupyterLab's without its CDN scripts (require.js, MathJax, mermaid, the
widget manager).
"""

from __future__ import annotations

from pathlib import Path

from rzero_lib.atomic_files import write_text_atomic

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "rzero_report"
INTERACTIVE_TAG = "interactive"  # cells that only make sense with a live kernel (JupyterLab)
REMOVED_TAGS = {INTERACTIVE_TAG, "parameters", "injected-parameters"}


def report_html(notebook: str | Path, title: str) -> str:
    """The HTML of the executed notebook at `notebook`, as the report."""
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.read(Path(notebook), as_version=4)
    nb.metadata["title"] = title  # the page's <title>
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = REMOVED_TAGS
    exporter = HTMLExporter(config=config, template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True)
    body, _ = exporter.from_notebook_node(nb)
    return body


def export_report_html(notebook: str | Path, html: str | Path, title: str) -> Path:
    """Write `report_html(notebook, title)` to `html` atomically."""
    return write_text_atomic(Path(html), report_html(notebook, title))
