"""The app in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

Starts `streamlit run app/streamlit_app.py` on a free port against a temporary
SQLite database, drives a whole session (upload, train, monitor, results,
simulate, entropy, projects) and saves a full-page screenshot of every page
into $MAT_INTERP_SCREENSHOTS (default: test-artifacts/screenshots).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mat_interp_core import projects, synthetic

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
HEALTH_DEADLINE = 60  # s for the server to answer /_stcore/health
TRAIN_TIMEOUT = 240_000  # ms for the 3-trial study to finish
STEP_TIMEOUT = 60_000  # ms for one page to render its result


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _require_browser() -> None:
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    if missing:
        message = f"{' and '.join(missing)} not installed"
        if _in_ci():
            pytest.fail(message + " -- required in CI", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = Path(os.environ.get("MAT_INTERP_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nbrowser screenshots: {folder}")
    return folder


class Server:
    """One `streamlit run` process with its own SQLite database; only this process is stopped."""

    def __init__(self, base: Path, port: int):
        self.base = base
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.database_url = f"sqlite:///{base / 'browser.db'}"
        self.log = base / "streamlit.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        env = dict(os.environ)
        env.update({
            "MAT_INTERP_DATABASE_URL": self.database_url,
            "MAT_INTERP_HOME": str(self.base / "home"),
            "MAT_INTERP_WORKERS": "1",
            "MAT_INTERP_LOCAL_WORKERS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        })
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
            time.sleep(0.2)  # polling interval

    def stop(self) -> None:
        # Workers started by the app exit on their own once asked to stop (they need only the database).
        try:
            for p in projects.list_projects(self.database_url):
                projects.request_stop(self.database_url, p.name)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_server(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[[], Server]]:
    _require_browser()
    servers: list[Server] = []

    def start() -> Server:
        base = tmp_path / f"server{len(servers)}"
        base.mkdir()
        server = Server(base, free_port())
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def browser_page() -> Iterator:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=STEP_TIMEOUT)  # e.g. the first model load imports TensorFlow in the server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(STEP_TIMEOUT)
            yield page
        finally:
            browser.close()


# ------------------------------------------------------------------ helpers


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
    return path


def goto_page(page, title: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=title, exact=True, level=1)).to_be_visible()


def fill_number(page, label: str, value: str) -> None:
    from playwright.sync_api import expect

    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    expect(box).to_have_value(value)


def wait_idle(page) -> None:
    """Until Streamlit has finished the current run (the status widget disappears)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=STEP_TIMEOUT)


# ------------------------------------------------------------------ tests


def test_a_fresh_server_opened_on_a_page_url_shows_the_app(start_server, browser_page):
    """A bookmark to /projects right after a (re)start renders through the entry script."""
    from playwright.sync_api import expect

    server = start_server()
    page = browser_page
    page.goto(f"{server.url}/projects", wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Projects", exact=True, level=1)).to_be_visible()
    expect(page.get_by_text("There are no projects yet.")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Database:")).to_be_visible()
    nav = page.get_by_test_id("stSidebarNav")
    for title in ("Data", "Train", "Monitor", "Results", "Simulate", "Entropy", "Projects"):
        expect(nav.get_by_role("link", name=title, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name=re.compile("streamlit app", re.I))).to_have_count(0)


def test_whole_session_in_a_real_browser(start_server, browser_page, screenshots, tmp_path):
    from playwright.sync_api import expect

    server = start_server()
    page = browser_page
    csv = tmp_path / "demo.csv"
    csv.write_bytes(synthetic.demo_csv_bytes())

    # --- Data: drop the CSV on the uploader, give the sample mass.
    page.goto(server.url, wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Data", exact=True, level=1)).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(csv))
    expect(page.get_by_text("Ready: 800 points on 8 values of H (Oe)")).to_be_visible()
    expect(page.get_by_text("enter the sample mass")).to_be_visible()
    fill_number(page, "Sample mass (mg)", f"{synthetic.DEMO_MASS_MG:.4f}")
    expect(page.get_by_text("enter the sample mass")).to_have_count(0)
    expect(page.locator(".js-plotly-plot")).to_have_count(2)
    wait_idle(page)
    shoot(page, screenshots, "01-data.png")

    # --- Train: a 3-trial study with short trials.
    goto_page(page, "Train")
    name_box = page.get_by_label("Project name", exact=True)
    name_box.fill("browser-demo")
    name_box.press("Enter")
    expect(name_box).to_have_value("browser-demo")
    fill_number(page, "Trials (networks to train)", "3")
    fill_number(page, "Epochs per trial (max)", "30")
    layers = page.get_by_test_id("stSlider").filter(has_text="Hidden layers").get_by_role("slider")
    upper = layers.nth(1)
    upper.focus()
    for _ in range(6):  # 2–10 -> 2–4 layers
        upper.press("ArrowLeft")
    expect(upper).to_have_value("4")
    page.get_by_text("Early stopping, pruning and other settings").click()
    fill_number(page, "Pruning: first check after (epochs)", "10")
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("Project browser-demo created; 1 local worker started")).to_be_visible()
    wait_idle(page)
    shoot(page, screenshots, "02-train.png")
    p = projects.get_project(server.database_url, "browser-demo")
    assert (p.n_trials, p.space.epochs, p.space.layers, p.space.min_resource) == (3, 30, (2, 4), 10)
    assert p.units["mass_mg"] == synthetic.DEMO_MASS_MG

    # --- Monitor: the fragment refreshes by itself until the study is finished.
    goto_page(page, "Monitor")
    expect(page.get_by_text(re.compile(r"Finished: \d+ of 3 trials"))).to_be_visible(timeout=TRAIN_TIMEOUT)
    expect(page.get_by_role("heading", name="Learning curves")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(1)
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    shoot(page, screenshots, "03-monitor.png")

    # --- Results.
    goto_page(page, "Results")
    expect(page.get_by_text(re.compile(r"Model: trial #\d+ \(R² "))).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(3)
    wait_idle(page)
    shoot(page, screenshots, "04-results.png")

    # --- Simulate with the default (fine) axes.
    goto_page(page, "Simulate")
    expect(page.get_by_label("H (Oe) axis", exact=True)).to_have_value("100:50000:100")
    page.get_by_role("button", name="Simulate", exact=True).click()
    expect(page.get_by_text(re.compile(r"Simulated [\d,]+ points"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Download the simulated grid"))).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(3)
    wait_idle(page)
    shoot(page, screenshots, "05-simulate.png")

    # --- Entropy from that grid, with the linear-interpolation baseline beside it.
    goto_page(page, "Entropy")
    expect(page.get_by_role("heading", name="Figures of merit")).to_be_visible()
    page.get_by_text("linear interpolation along H", exact=True).click()
    expect(page.get_by_role("button", name=re.compile(r"Plot entropy-compare \(HTML\)"))).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(2)
    expect(page.get_by_text("camera icon")).to_be_visible()
    wait_idle(page)
    shoot(page, screenshots, "06-entropy.png")

    # --- Projects.
    goto_page(page, "Projects")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(page.get_by_role("button", name="Delete browser-demo")).to_be_disabled()
    wait_idle(page)
    shoot(page, screenshots, "07-projects.png")

    status = projects.progress(server.database_url, "browser-demo")
    assert status["done"] and status["finished"] >= 3 and status["failed"] == 0
    assert "Traceback" not in server.log.read_text()

