"""The suite as a person uses it: JupyterLab in a real browser against a finished smoke run, and the report.

Opens 03_voting and 06_analysis through the file browser (Open With → Jupytext Notebook), runs every cell
through the Run menu and checks: no error output, every image loaded (03's histogram exactly once), the
explorer's widgets present and its "kept" filter showing the kept count of votes.parquet; then saves and
closes each notebook and checks that no file git sees changed. Opens report.html and checks its title, that
every image loaded with real alt text, that no code is shown, that it fits the window and that no request
left the machine. Afterwards no kernel or server process of the test is left.

Needs Debian's chromium and the `playwright` package: `make test-ui` installs both (chromium through apt,
as root); without them these tests skip and say why. The run directory is $RZERO_UI_RUN_DIR when set (a
finished smoke run, to iterate quickly), else the session's smoke run (tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.ui.lab import (
    CHROMIUM,
    LabServer,
    OfflineGuard,
    alive,
    error_outputs,
    images,
    launch_chromium,
    open_notebook,
    run_all_cells,
    save_and_close,
)

pytestmark = pytest.mark.ui
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (make test-ui)")
if CHROMIUM is None:
    pytest.skip("needs chromium: make test-ui installs Debian's through apt when run as root "
                "(or set RZERO_CHROMIUM to a Chromium binary)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
TIMINGS: dict[str, float] = {}


def git_state() -> tuple[str, str]:
    """Everything `git status` shows (untracked files included) and the content of the tracked changes."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    diff = subprocess.run(["git", "diff", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return status, diff


@pytest.fixture(scope="module")
def run_dir(request) -> Path:
    given = os.environ.get("RZERO_UI_RUN_DIR")
    if given:
        return Path(given).resolve()
    return request.getfixturevalue("smoke_run")["dir"]


@pytest.fixture(scope="module")
def lab(run_dir):
    server = LabServer(REPO, env={"RZERO_RUN_DIR": str(run_dir), "OMP_WAIT_POLICY": "PASSIVE",
                                  "TOKENIZERS_PARALLELISM": "false"})
    t0 = time.time()
    server.start()
    TIMINGS["lab start"] = time.time() - t0
    yield server
    server_pid = server.proc.pid
    server.stop()
    left = alive([server_pid, *server.kernel_pids])
    assert not left, f"processes of the Lab server left running: {left}"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    guard = OfflineGuard(context, lab.base)
    page = context.new_page()
    guard.watch(page)
    page.set_default_timeout(60_000)
    yield page
    lab.remember_kernels()
    context.close()
    assert not guard.blocked, f"requests that would have left the machine: {guard.blocked}"
    assert not guard.foreign_websockets(lab.base), guard.websockets


def kept_count(run_dir: Path) -> int:
    votes = [pd.read_parquet(p, columns=["kept"]) for p in sorted(run_dir.glob("iter_*/voting/votes.parquet"))]
    return int(pd.concat(votes)["kept"].astype(bool).sum())


def run_notebook(page, lab, path: str) -> None:
    t0 = time.time()
    open_notebook(page, lab, path)
    TIMINGS[f"{path} open"] = time.time() - t0
    TIMINGS[f"{path} run all"] = run_all_cells(page)
    errors = error_outputs(page)
    assert not errors, f"{path}: error outputs:\n" + "\n---\n".join(errors)
    shown = images(page, PANEL)
    assert shown, f"{path} shows no figure"
    assert all(i["complete"] and i["width"] > 0 for i in shown), shown


def test_voting_notebook_runs_clean_and_shows_its_figure_once(page, lab):
    before = git_state()
    run_notebook(page, lab, "notebooks/03_voting.py")
    figures = images(page, f"{PANEL} .jp-OutputArea-output")
    assert len(figures) == 1, f"the p̂ histogram is shown {len(figures)} times"
    save_and_close(page)
    assert git_state() == before, "opening, running and saving 03_voting changed the repository"


def test_analysis_notebook_and_its_explorer(page, lab, run_dir):
    before = git_state()
    run_notebook(page, lab, "notebooks/06_analysis.py")
    panel = page.locator(PANEL)
    for widget in (".widget-toggle-buttons", ".widget-hslider", ".widget-dropdown", ".widget-select"):
        assert panel.locator(widget).count() >= 1, f"explorer widget {widget} missing"
    count = panel.locator(".widget-html-content", has_text=re.compile(r"\d+ of \d+ questions")).first
    total = int(re.search(r"of (\d+) questions", count.inner_text()).group(1))
    panel.locator(".widget-toggle-button", has_text=re.compile(r"^kept$")).click()
    kept = kept_count(run_dir)
    assert kept < total, "the smoke run drops some questions, so the filter must change the count"
    page.wait_for_function("([el, kept]) => el.textContent.trim().startsWith(kept + ' of')",
                           arg=[count.element_handle(), kept], timeout=30_000)
    assert count.inner_text().startswith(f"{kept} of {total} questions")
    save_and_close(page)
    assert git_state() == before, "opening, running and saving 06_analysis changed the repository"


def test_report_renders_offline_as_a_report(page, run_dir):
    page.goto((run_dir / "report" / "report.html").as_uri())
    page.wait_for_load_state("load")
    assert page.title() == f"R-Zero run report: {run_dir.name}"
    shown = images(page)
    assert len(shown) >= 7 and all(i["complete"] and i["width"] > 0 for i in shown), shown
    assert all(i["alt"] and i["alt"] != "figure" and not i["alt"].startswith("No description") for i in shown), \
        [i["alt"] for i in shown]
    assert page.locator(".jp-CodeCell .jp-InputArea-editor").count() == 0, "code cells are shown"
    assert page.locator("script").count() == 0
    text = page.locator("body").inner_text()
    assert "The label sample" in text and "Interactive explorer" not in text
    assert str(Path.home()) not in page.content(), "the report shows a home-directory path"
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


def test_zz_timings():
    """Not a check: how long each step took (pytest -s shows it)."""
    for name, seconds in TIMINGS.items():
        print(f"ui timing: {name}: {seconds:.1f} s")
