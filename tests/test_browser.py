"""The app in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

Starts `streamlit run app/streamlit_app.py` on a free port against a temporary
SQLite database, drives a whole session (upload, train, monitor, results,
simulate, entropy, projects) and saves a full-page screenshot of every page
into $MAT_INTERP_SCREENSHOTS (default: test-artifacts/screenshots).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser import goto_page, screenshot_folder, shoot, type_into, wait_idle

from mat_interp_core import projects, simulate, synthetic

pytestmark = pytest.mark.browser

TRAIN_TIMEOUT = 240_000  # ms for the 3-trial study to finish
ONE_WORKER = {"MAT_INTERP_WORKERS": "1", "MAT_INTERP_LOCAL_WORKERS": "1"}


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    return screenshot_folder("MAT_INTERP_SCREENSHOTS", "screenshots", request)


# ------------------------------------------------------------------ tests


def test_a_fresh_server_opened_on_a_page_url_shows_the_app(start_server, browser_page):
    """A bookmark to /projects right after a (re)start renders through the entry script."""
    from playwright.sync_api import expect

    server = start_server(ONE_WORKER)
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

    server = start_server(ONE_WORKER)
    page = browser_page
    csv = tmp_path / "demo.csv"
    csv.write_bytes(synthetic.demo_csv_bytes())

    # --- Data: drop the CSV on the uploader, give the sample mass.
    page.goto(server.url, wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Data", exact=True, level=1)).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(csv))
    expect(page.get_by_text("Ready: 800 points on 8 values of H (Oe)")).to_be_visible()
    expect(page.get_by_text("enter the sample mass")).to_be_visible()
    type_into(page, "Sample mass (mg)", f"{synthetic.DEMO_MASS_MG:.4f}")
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
    wait_idle(page)  # the name's rerun first: one still running when the trials are typed can put back their default
    type_into(page, "Trials (networks to train)", "3")
    type_into(page, "Epochs per trial (max)", "30")
    layers = page.get_by_test_id("stSlider").filter(has_text="Hidden layers").get_by_role("slider")
    upper = layers.nth(1)
    upper.focus()
    for _ in range(6):  # 2–10 -> 2–4 layers
        upper.press("ArrowLeft")
    expect(upper).to_have_value("4")
    page.get_by_text("Early stopping, pruning and other settings").click()
    type_into(page, "Pruning: first check after (epochs)", "10")
    wait_idle(page)
    expect(page.get_by_label("Trials (networks to train)", exact=True)).to_have_value("3")
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text("Project browser-demo created; 1 local worker started")).to_be_visible()
    wait_idle(page)
    shoot(page, screenshots, "02-train.png")
    p = projects.open_project(server.database_url, "browser-demo")
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
    expect(page.get_by_text(re.compile(r"Model: (the best (refined )?model \(trial \d+\)|ensemble of \d+ )"))).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(3)
    wait_idle(page)
    shoot(page, screenshots, "04-results.png")

    # --- Simulate with the default (fine) axes.
    goto_page(page, "Simulate")
    expect(page.get_by_label("H (Oe) axis", exact=True)).to_have_value("100:50000:100")
    page.get_by_role("button", name="Simulate", exact=True).click()
    expect(page.get_by_text(re.compile(r"Simulated [\d,]+ points"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Download the simulated grid"))).to_be_visible()
    # Two line cuts and the map, and the spread map when the pruner left more than one complete trial (an ensemble).
    ensemble = isinstance(simulate.model_set(projects.open_project(server.database_url, "browser-demo"))[0], simulate.Ensemble)
    expect(page.locator(".js-plotly-plot")).to_have_count(3 + ensemble)
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
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()  # the projects (then the source files)
    expect(page.get_by_role("button", name="Delete browser-demo")).to_be_disabled()
    wait_idle(page)
    shoot(page, screenshots, "07-projects.png")

    status = projects.progress(projects.open_project(server.database_url, "browser-demo"))
    assert status["done"] and status["finished"] >= 3 and status["failed"] == 0
    assert "Traceback" not in server.log.read_text()

