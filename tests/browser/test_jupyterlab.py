"""Notebooks 00 and 05 in a real JupyterLab, driven through its interface by headless Chromium.

JupyterLab runs on 127.0.0.1 with a token over a copy of the notebooks (the committed ones are
never touched), with a cell appended after each notebook's volume viewer. Playwright drives
Debian's chromium (``/usr/bin/chromium``; Playwright's own browser download cannot work here):
Run All Cells from the menu, wait for the kernel, save, and check the saved notebook: every code
cell ran, no cell shows an error, and the appended cell reports the ``JPY_SESSION_NAME`` that
JupyterLab sets (the variable with which itkwidgets used to block every later cell). Then it moves
a slider and asserts that the figure below changed, re-runs the cell after the viewer and asserts
that it finishes. Screenshots of every output go to ``$MEDKIT_BROWSER_OUT`` (default
``tests/browser/output/``, not committed). ``make browser-test`` runs this file alone.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MEDKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
OUT = Path(os.environ.get("MEDKIT_BROWSER_OUT", ROOT / "tests" / "browser" / "output"))
NOTEBOOKS = ("00_data_tour.ipynb", "05_pixel_embeddings.ipynb")
AFTER_VIEWER = 'import os\nprint("after the viewer; JPY_SESSION_NAME =", os.environ.get("JPY_SESSION_NAME"))'
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show (not one restored in a hidden tab)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # no connection attempts from a closed network

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium; "
                              ".ci/run does) to run the browser test"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements.txt)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(folder: Path) -> None:
    """JupyterLab user settings: every cell rendered (no windowing), no autosave, no news."""
    plugins = {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
               "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
               "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
    for plugin, values in plugins.items():
        package, name = plugin.rsplit("/", 1)
        path = folder / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over copies of the notebooks; yields (base url, token, notebook folder)."""
    home = tmp_path_factory.mktemp("lab")
    nbdir = home / "notebooks"
    nbdir.mkdir()
    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / "notebooks" / name, 4)
        nb.cells.append(nbformat.v4.new_code_cell(AFTER_VIEWER))
        nbformat.write(nb, nbdir / name)
    (home / "papermill_runs").symlink_to(ROOT / "papermill_runs")  # the committed reference results
    _settings(home / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("MEDKIT_NO_WIDGETS", "MPLBACKEND")}  # a live session
    env.update(JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"))
    log = open(home / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                               f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={home}", "--ServerApp.open_browser=False",
                               *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI runs as root
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
    else:
        server.kill()
        raise RuntimeError("JupyterLab did not answer within 120 s")
    yield url, token, nbdir
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _wait_idle(page, timeout_s: float) -> None:
    """Until no cell of the notebook shows the busy prompt [*]."""
    deadline = time.time() + timeout_s
    time.sleep(1.0)
    while time.time() < deadline:
        busy = page.locator(f"{PANEL} .jp-InputPrompt", has_text="[*]").count()
        if busy == 0:
            return
        time.sleep(1.0)
    raise AssertionError(f"cells still running after {timeout_s:.0f} s")


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def _image_of(cell) -> str:
    """The source of the last image the cell's outputs show ("" if none)."""
    imgs = cell.locator(".jp-OutputArea img")
    return imgs.last.get_attribute("src") if imgs.count() else ""


def _open_and_run(page, url: str, token: str, name: str, shots: Path, timeout_s: float):
    page.goto(f"{url}/lab/tree/notebooks/{name}?reset&token={token}")  # a fresh workspace: this notebook only
    page.wait_for_selector(f"{PANEL} .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                           ".jp-Toolbar-kernelStatus, .jp-KernelStatus", timeout=120_000)
    time.sleep(2.0)  # the kernel's first connection
    t0 = time.time()
    _menu(page, "Run", "Run All Cells")
    _wait_idle(page, timeout_s)
    seconds = time.time() - t0
    _menu(page, "File", "Save Notebook")
    time.sleep(2.0)
    cells = page.locator(f"{PANEL} .jp-CodeCell")
    shots.mkdir(parents=True, exist_ok=True)
    for i in range(cells.count()):
        shown = cells.nth(i).locator(".jp-OutputArea-output")
        if shown.count() and any(shown.nth(j).is_visible() for j in range(shown.count())):
            cells.nth(i).screenshot(path=str(shots / f"{Path(name).stem}_cell{i:02d}.png"))
    return cells, seconds


def _check_saved(path: Path) -> list:
    nb = nbformat.read(path, 4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert all(c.execution_count for c in code), [c.source[:60] for c in code if not c.execution_count]
    return code


def _move_slider(page, cell, label: str, value: int) -> None:
    """Type a new value into the readout of the slider named ``label`` in ``cell``."""
    slider = cell.locator(".widget-slider", has=page.locator(".widget-label", has_text=label)).first
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")


def _after_viewer_reruns(page, cells, timeout_s: float = 60) -> None:
    last = cells.last
    before = last.locator(".jp-InputPrompt").inner_text()
    last.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")  # run this cell again
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        prompt = last.locator(".jp-InputPrompt").inner_text()
        if "*" not in prompt and prompt != before:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the cell after the viewer did not finish within {timeout_s:.0f} s (prompt {prompt})")
    assert "after the viewer" in last.locator(".jp-OutputArea").inner_text()


def _changed(cell, before: str, timeout_s: float = 30) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        now = _image_of(cell)
        if now and now != before:
            return now
        time.sleep(0.5)
    raise AssertionError("the figure did not change after the slider moved")


# notebook: (the label of a slider to move, its new value, seconds allowed for Run All)
SLIDERS = {"00_data_tour.ipynb": ("slice", 2, 300), "05_pixel_embeddings.ipynb": ("row", 3, 480)}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_live_and_its_widgets_answer(name, lab, browser):
    url, token, nbdir = lab
    label, value, timeout_s = SLIDERS[name]
    stem = name[:2]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    cells, seconds = _open_and_run(page, url, token, name, OUT, timeout_s=timeout_s)
    code = _check_saved(nbdir / name)
    said = "".join(o.get("text", "") for o in code[-1].outputs)
    assert "JPY_SESSION_NAME = " in said and "None" not in said  # JupyterLab set it for the kernel
    cell = cells.filter(has=page.locator(".widget-slider .widget-label", has_text=label)).first
    before = _image_of(cell)
    assert before.startswith("data:image/png")  # the kernel drew the figure below the controls
    _move_slider(page, cell, label, value)
    _changed(cell, before)
    cell.screenshot(path=str(OUT / f"{stem}_after_slider.png"))
    _after_viewer_reruns(page, cells)
    page.screenshot(path=str(OUT / f"{stem}_page.png"))
    (OUT / f"{stem}_seconds.txt").write_text(f"{seconds:.1f}\n")
    page.close()
