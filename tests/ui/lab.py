"""Drive a real JupyterLab in a real browser: the server, the browser and the few UI gestures the tests use.

- `LabServer`: `jupyter lab` on 127.0.0.1 on a free port, with a token, in its own process group, with
  throw-away config/settings/workspace folders (nothing of the user's Lab state leaks in or out) and
  no news or update checks. Kernels run in sessions of their own (jupyter_client starts them with
  start_new_session), outside the server's group: `stop()` shuts them down through the server's API,
  ends the server's process group, then kills any kernel PID it recorded that is still alive.
- `launch_chromium`: Debian's chromium (`/usr/bin/chromium`, or $RZERO_CHROMIUM) through Playwright;
  `playwright install` cannot download a browser here. The flags keep chromium from calling home,
  which this machine's closed network answers with refused connections.
- `OfflineGuard`: every request the browser makes goes through it; anything that is not the local
  server, a file:// URL or inline data is aborted and recorded.
- `open_notebook`, `run_all_cells`, `save_and_close`: the gestures a person makes (file browser,
  Open With → Jupytext Notebook, Run → Run All Cells, File → Save, File → Close Tab).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which(os.environ.get("RZERO_CHROMIUM", "chromium"))  # None: the UI tests skip
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_SCHEMES = ("data:", "blob:", "file:")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """`jupyter lab` serving `root` on 127.0.0.1; kernels inherit `env` (e.g. RZERO_RUN_DIR)."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, startup_timeout_s: float = 90):
        self.root = Path(root)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = Path(tempfile.mkdtemp(prefix="rzero-lab-"))
        settings = self.state / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        self.env = {**os.environ, **(env or {}),
                    "JUPYTER_CONFIG_DIR": str(self.state / "config"),
                    "JUPYTER_RUNTIME_DIR": str(self.state / "runtime"),
                    "JUPYTERLAB_SETTINGS_DIR": str(self.state / "settings"),
                    "JUPYTERLAB_WORKSPACES_DIR": str(self.state / "workspaces")}
        self.log_path = self.state / "lab.log"
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self._descendants: set[int] = set()

    def start(self) -> LabServer:
        jupyter = Path(sys.executable).with_name("jupyter")
        cmd = [str(jupyter), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")  # Lab refuses to start as root without it (containers, CI)
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + self.startup_timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2)
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer within {self.startup_timeout_s} s:\n{self.log()}")

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}&reset"

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(f"{self.base}/api/{path}?token={self.token}", method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def remember_kernels(self) -> None:
        """Record the PIDs of the server's descendants: its kernels."""
        import psutil

        try:
            self._descendants |= {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass

    def shutdown_kernels(self) -> None:
        """Shut every running kernel down through the server (DELETE /api/kernels/<id>)."""
        try:
            for kernel in self.api("GET", "kernels"):
                self.api("DELETE", f"kernels/{kernel['id']}")
        except OSError:
            pass  # the server is gone: its kernels are killed by PID in stop()

    def stop(self) -> None:
        import psutil

        if self.proc is None:
            return
        self.remember_kernels()
        self.shutdown_kernels()
        for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        for pid in self._descendants:  # kernels the server did not shut down itself
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
        self.proc = None
        shutil.rmtree(self.state, ignore_errors=True)

    @property
    def kernel_pids(self) -> set[int]:
        """Every descendant of the server recorded so far (its kernels)."""
        return set(self._descendants)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def alive(pids) -> list[int]:
    """Those of `pids` still running (zombies count as gone)."""
    import psutil

    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


class OfflineGuard:
    """Abort and record every request that would leave the machine."""

    def __init__(self, context, allowed_origin: str | None = None):
        self.allowed = tuple(o for o in (allowed_origin,) if o) + LOCAL_SCHEMES
        self.blocked: list[str] = []
        self.websockets: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.allowed):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def watch(self, page) -> None:
        page.on("websocket", lambda ws: self.websockets.append(ws.url))

    def foreign_websockets(self, origin: str) -> list[str]:
        local = origin.replace("http://", "ws://", 1)
        return [u for u in self.websockets if not u.startswith(local)]


# --------------------------------------------------------------------------
# gestures
# --------------------------------------------------------------------------


def _menu(page, top: str, command: str) -> None:
    """Click a menu bar entry, then the item bound to `command` (labels change with the document type)."""
    page.locator(f".lm-MenuBar-itemLabel:text-is('{top}')").click()
    page.locator(f".lm-Menu-item[data-command='{command}']").click()


def open_notebook(page, lab: LabServer, path: str, viewer: str = "Jupytext Notebook", timeout_s: float = 120):
    """Open `path` from the file browser with Open With → `viewer`; wait for an idle kernel."""
    folder, name = path.rsplit("/", 1) if "/" in path else ("", path)
    page.goto(lab.url(f"lab/tree/{folder}"))
    entry = page.locator(".jp-DirListing-item", has_text=re.compile(rf"^{re.escape(name)}"))
    entry.first.wait_for(timeout=timeout_s * 1000)
    entry.first.click(button="right")
    page.locator(".lm-Menu-item:has-text('Open With')").hover()
    page.get_by_role("menuitem", name=viewer, exact=True).click()
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=timeout_s * 1000)
    wait_kernel_idle(page, timeout_s)


def wait_kernel_idle(page, timeout_s: float = 120) -> None:
    page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for(timeout=timeout_s * 1000)


def run_all_cells(page, timeout_s: float = 300) -> float:
    """Run → Run All Cells; wait until no cell is pending and the kernel is idle. Returns seconds."""
    t0 = time.time()
    _menu(page, "Run", "runmenu:run-all")
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => !p.textContent.includes('*'));
        }""", timeout=timeout_s * 1000, polling=250)
    wait_kernel_idle(page, timeout_s)
    return time.time() - t0


def save_and_close(page) -> None:
    """File → Save, then File → Close and Shut Down Notebook (confirmed)."""
    _menu(page, "File", "docmanager:save")
    page.locator(".jp-mod-current.jp-mod-dirty").wait_for(state="detached", timeout=30_000)
    _menu(page, "File", "filemenu:close-and-cleanup")
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=10_000)
    text = dialog.inner_text()
    assert "unsaved" not in text.lower(), "closing asked about unsaved changes: " + text
    dialog.locator(".jp-mod-accept").click()
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").wait_for(state="detached", timeout=30_000)


def error_outputs(page) -> list[str]:
    """Texts of the error outputs (tracebacks) in the visible notebook."""
    return page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
        """els => els.filter(e => e.dataset.mimeType === 'application/vnd.jupyter.error'
                              || e.querySelector('.ansi-red-fg') && /Error|Traceback/.test(e.textContent))
                     .map(e => e.textContent.slice(0, 2000))""")


def images(page, scope: str = "") -> list[dict]:
    return page.eval_on_selector_all(
        f"{scope} img".strip(),
        "els => els.map(e => ({src: e.src.slice(0, 80), complete: e.complete, width: e.naturalWidth, alt: e.alt}))")
