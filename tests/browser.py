"""The app in a real browser: `streamlit run` on a free port, Debian's Chromium through Playwright.

Shared by tests/test_browser.py and tests/test_walkthrough.py: the server
process (its own SQLite database and MAT_INTERP_HOME; the only process a test
stops), the browser page fixture, and the helpers that act like a user
(go to a page, pick an option, type a value, read a table, take a screenshot).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mat_interp_core import projects

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
HEALTH_DEADLINE = 90  # s for `streamlit run` to answer /_stcore/health
STEP_TIMEOUT = 120_000  # ms for one page to render (the first model load imports TensorFlow in the server)


def require_browser() -> None:
    """Skip without Playwright or Chromium; in CI (CI=true) that is a failure instead."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    if missing:
        message = f"{' and '.join(missing)} not installed"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(message + " -- required in CI", pytrace=False)
        pytest.skip(message)


class Server:
    """One `streamlit run app/streamlit_app.py` with its own SQLite database and MAT_INTERP_HOME.

    `env` adds to (or, with None, removes from) the environment the server inherits.
    """

    def __init__(self, base: Path, port: int, env: dict[str, str | None] | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.database_url = f"sqlite:///{base / 'app.db'}"
        self.home = base / "home"
        self.log = base / "streamlit.log"
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        env = dict(os.environ, MAT_INTERP_DATABASE_URL=self.database_url, MAT_INTERP_HOME=str(self.home),
                   TF_CPP_MIN_LOG_LEVEL="3")
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        cmd = [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + HEALTH_DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"streamlit exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200 and resp.read().strip() == b"ok":
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no health answer after {HEALTH_DEADLINE} s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)  # polling the health endpoint (the server is not a page yet)

    def stop(self) -> None:
        try:  # the app's workers stop themselves once asked (they only need the database)
            for p in projects.list_projects(self.database_url):
                if not projects.progress(projects.open_project(self.database_url, p.name))["done"]:
                    projects.request_stop(projects.open_project(self.database_url, p.name))
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # this PID only
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_server(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., Server]]:
    """start_server(env=None) starts a server; every server started is stopped at the end of the test."""
    require_browser()
    servers: list[Server] = []

    def start(env: dict[str, str | None] | None = None) -> Server:
        base = tmp_path / f"server{len(servers)}"
        base.mkdir()
        server = Server(base, free_port(), env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def browser_page() -> Iterator:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=STEP_TIMEOUT)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(STEP_TIMEOUT)
            yield page
        finally:
            browser.close()


def screenshot_folder(env_var: str, default: str, request: pytest.FixtureRequest) -> Path:
    """$env_var or test-artifacts/<default>, created and announced in the test report."""
    folder = Path(os.environ.get(env_var) or ROOT / "test-artifacts" / default)
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nscreenshots: {folder}")
    return folder


# ------------------------------------------------------------------ acting like a user


def shoot(page, folder: Path, name: str) -> Path:
    """Full-page screenshot: Streamlit scrolls inside its main container, so grow the viewport to fit it."""
    height = page.evaluate(
        "() => Math.max(document.body.scrollHeight,"
        " ...Array.from(document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer],"
        " section.main')).map(e => e.scrollHeight))"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 40, size["height"]), 8000)})
    page.wait_for_timeout(600)  # let plotly re-layout to the new size (rendering only, not synchronisation)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    print(f"  {path}")
    return path


def goto_page(page, title: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=title, exact=True, level=1)).to_be_visible()


def wait_idle(page) -> None:
    """Until Streamlit has finished the current run (its status widget is gone)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def no_exception(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stException")).to_have_count(0)


def pick(page, label: str, option: str) -> None:
    """Choose `option` in the selectbox labelled `label` the way a user does: open it, click the option."""
    from playwright.sync_api import expect

    box = page.get_by_role("combobox", name=label, exact=True)
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):  # a rerun that lands just after the click closes the list again: open it again
        box.click()
        try:
            expect(choice).to_be_visible(timeout=15_000)
            break
        except AssertionError:
            page.keyboard.press("Escape")
            wait_idle(page)
    choice.click()
    expect(box).to_have_value(option)
    wait_idle(page)


def type_into(page, label: str, text: str, shown: str | None = None) -> None:
    """Type into the input labelled `label`, press Enter, wait until it shows `shown` (default: `text`)."""
    from playwright.sync_api import expect

    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value(shown if shown is not None else text)
    wait_idle(page)


def read_grid(page, frame) -> list[dict[str, str]]:
    """The rows of an st.dataframe as its cells' text, from the grid's accessibility table.

    The grid paints on a canvas; it writes its cells into an (invisible) table for screen
    readers once it has the focus, so focus it first (a click on its first data row).
    """
    from playwright.sync_api import expect

    frame.scroll_into_view_if_needed()
    frame.locator(".dvn-scroller").click(position={"x": 40, "y": 50})
    expect(frame.locator("table[role=grid] td[role=gridcell]").first).to_be_attached()
    return frame.evaluate(
        """el => {
            const table = el.querySelector('table[role=grid]');
            const heads = Array.from(table.querySelectorAll('thead th')).map(th => th.textContent.trim());
            return Array.from(table.querySelectorAll('tbody tr')).map(tr => {
                const row = {};
                Array.from(tr.querySelectorAll('td')).forEach((td, i) => { row[heads[i]] = td.textContent.trim(); });
                return row;
            });
        }"""
    )


def number(text: str) -> float:
    text = text.strip().replace(",", "")
    return float("nan") if text in ("", "None", "nan", "NaN", "—") else float(text)
