"""Issue 4's "Done when", done by a new user in a real browser (Debian's Chromium via Playwright).

After `streamlit run app/streamlit_app.py` (started here on a free port against a
temporary SQLite database and MAT_INTERP_HOME) everything happens in the browser:

1. Data: upload ../shared/data/traindata_Section3_1.csv (ErCo2: X1_demo1 = T in K,
   X2_demo1 = H in Oe, Y_demo1 = moment in emu) through the file input, pick the
   columns, type the units, mark it as magnetisation (M in emu, H in Oe, 0.61 mg).
2. Train: start the default search (30 trials, the paper's ranges, the default
   number of local workers) without changing anything.
3. Monitor: watch the live learning curves until the study is finished, then until the
   refinement of the best configurations (on by default) is done.
4. Simulate: fields every 0.2 T (X2 axis 2000:50000:2000 Oe) and the temperature axis
   the page proposes (10:60:0.1 K).
5. Entropy: ΔH = 1, 2, 3, 4, 5 T on the grid the page picks for the integral
   (0.1 K × 0.02 T, the ensemble of every kept model), without changing anything;
   read the figures-of-merit table from the page and check that the 5 T peak sits at
   the ErCo2 transition (30–40 K) and is not spiky (spikiness ≤ 1.2, below that of
   the coarse data, and no comb warning on the page).

A full-page screenshot of each step goes to test-artifacts/walkthrough/ (or
$MAT_INTERP_WALKTHROUGH_SHOTS); the folder is printed. Skips when ../shared/data
is absent. Only the streamlit server this test starts is stopped (by its PID);
the app's workers are asked to stop through `projects.request_stop`.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest
from browser import goto_page, no_exception, number, pick, read_grid, screenshot_folder, shoot, type_into, wait_idle

from mat_interp_core import projects, refine
from mat_interp_core.space import SearchSpace

pytestmark = pytest.mark.browser

TRAIN_TIMEOUT = 420_000  # ms for the default 30-trial study (~1–3 min alone on 2 cores; others may share the CPU)
ENTROPY_TIMEOUT = 600_000  # ms for the Entropy page's first run (the candidates' folds, the grid); >120 s once when CI's other process trained beside it
REFINE_TIMEOUT = 1_800_000  # ms for the refinement after it (10 configurations × 500 epochs and the band's folds, shared by the default workers: one per core)
PROJECT = "traindata_Section3_1"  # the Train page's default name for this file
MASS_MG = 0.61


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    folder = screenshot_folder("MAT_INTERP_WALKTHROUGH_SHOTS", "walkthrough", request)
    for old in folder.glob("0[1-6]*-*.png"):  # this test's own screenshots from an earlier run
        old.unlink()
    return folder


# ------------------------------------------------------------------ the walkthrough


def test_new_user_walkthrough_section31(start_server, browser_page, shots, section31_csv: Path):
    from playwright.sync_api import expect

    server = start_server({"MAT_INTERP_WORKERS": None})  # the app's default (one per core), as a new user gets it
    page = browser_page
    started = time.monotonic()

    # --- 1. Data: upload, pick the columns, the units, magnetisation with the sample mass.
    page.goto(server.url, wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Data", exact=True, level=1)).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(section31_csv))
    expect(page.get_by_role("heading", name="traindata_Section3_1.csv")).to_be_visible()
    pick(page, "X1: the scanned axis (e.g. temperature)", "X1_demo1")
    pick(page, "X2: the few fixed values (e.g. field)", "X2_demo1")
    pick(page, "Y: the measured quantity", "Y_demo1")
    expect(page.get_by_text(
        "Ready: 808 points on 8 values of X2_demo1 (100, 1000, 5000, 10000, 20000, 30000, 40000, 50000)."
    )).to_be_visible()
    type_into(page, "Unit of X1 (X1_demo1)", "K")
    type_into(page, "Unit of X2 (X2_demo1)", "Oe")
    type_into(page, "Unit of Y (Y_demo1)", "emu")
    mag = page.get_by_role("checkbox", name=re.compile(r"^This is magnetisation M\(T, H\)"))
    if not mag.is_checked():
        page.get_by_test_id("stCheckbox").filter(has_text="This is magnetisation").locator("label").click()
    expect(mag).to_be_checked()
    wait_idle(page)
    pick(page, "M unit", "emu")
    pick(page, "H unit", "Oe")
    expect(page.get_by_text("enter the sample mass")).to_be_visible()
    type_into(page, "Sample mass (mg)", "0.61", shown="0.6100")
    expect(page.get_by_text("enter the sample mass")).to_have_count(0)
    expect(page.locator(".js-plotly-plot")).to_have_count(2)  # Y vs X1 by X2, and the heatmap
    no_exception(page)
    shoot(page, shots, "01-data.png")

    # --- 2. Train: the defaults as they are (30 trials, the paper's search ranges), Start.
    goto_page(page, "Train")
    expect(page.get_by_label("Project name", exact=True)).to_have_value(PROJECT)
    expect(page.get_by_label("Trials (networks to train)", exact=True)).to_have_value("30")
    expect(page.get_by_label("Epochs per trial (max)", exact=True)).to_have_value("500")
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text(re.compile(rf"Project {PROJECT} created; \d+ local workers? started"))).to_be_visible()
    wait_idle(page)
    no_exception(page)
    shoot(page, shots, "02-train.png")
    project = projects.open_project(server.database_url, PROJECT)
    assert project.n_trials == 30
    assert project.space.to_dict() == {**SearchSpace().to_dict(), "seed": project.space.seed}
    assert (project.units["x1"], project.units["x2"], project.units["y"]) == ("K", "Oe", "emu")
    assert project.units["magnetisation"] is True
    assert (project.units["m_unit"], project.units["h_unit"], project.units["mass_mg"]) == ("emu", "Oe", MASS_MG)

    # --- 3. Monitor: live curves while it runs, then "Finished" (the fragment refreshes by itself).
    goto_page(page, "Monitor")
    expect(page.get_by_role("heading", name="Learning curves")).to_be_visible()
    # the search is over ("Search finished (…)" while the steps after it run, "Finished: …" once all are done)
    finished = page.get_by_text(re.compile(r"(?:Finished: |Search finished \()\d+ of 30 trials"))
    several = page.get_by_text(re.compile(r"^(?:[5-9]|[12]\d) / 30 trials finished"))  # mid-run, curves drawn
    expect(several.or_(finished).first).to_be_visible(timeout=TRAIN_TIMEOUT)
    if finished.count() == 0:
        expect(page.locator(".js-plotly-plot")).to_have_count(1)
        shoot(page, shots, "03-monitor-running.png")
    expect(finished).to_be_visible(timeout=TRAIN_TIMEOUT)
    trained = time.monotonic()
    expect(page.get_by_role("heading", name="Learning curves")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(1)  # the learning curves
    expect(page.get_by_text("Black: best trial; dashed grey: pruned; dotted red: failed.")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()  # the trial table
    no_exception(page)
    shoot(page, shots, "04-monitor-finished.png")
    status = projects.progress(projects.open_project(server.database_url, PROJECT))
    assert status["done"] and status["finished"] >= 30 and status["failed"] == 0, status
    # The steps after the search (on by default, run by the first local worker): the best configurations refined.
    expect(page.get_by_text(re.compile(r"Refinement: done \((\d+) of \1\)\."))).to_be_visible(timeout=REFINE_TIMEOUT)
    refined = time.monotonic()
    assert refine.refine_status(projects.open_project(server.database_url, PROJECT))[0] >= 5
    shoot(page, shots, "04b-monitor-refined.png")

    # --- 4. Simulate: 0.2 T field steps, the temperature axis as the page proposes it.
    goto_page(page, "Simulate")
    expect(page.get_by_label("X1_demo1 axis", exact=True)).to_have_value("10:60:0.1")  # the page's default
    type_into(page, "X2_demo1 axis", "2000:50000:2000")
    expect(page.get_by_text(re.compile(r"501 × 25 = 12,525 points"))).to_be_visible()
    page.get_by_role("button", name="Simulate", exact=True).click()
    expect(page.get_by_text(re.compile(r"Simulated 12,525 points \(501 × 25\)"))).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(4)  # two line cuts, the map and the ensemble's spread
    wait_idle(page)
    no_exception(page)
    shoot(page, shots, "05-simulate.png")

    # --- 5. Entropy: ΔH = 1…5 T on the grid the page picks for the integral, beside the coarse data.
    goto_page(page, "Entropy")
    type_into(page, "Field changes μ0ΔH (T), from the lowest field", "1, 2, 3, 4, 5")
    expect(page.get_by_role("combobox", name="M unit (Y_demo1)", exact=True)).to_have_value("emu")
    expect(page.get_by_role("combobox", name="H unit (X2_demo1)", exact=True)).to_have_value("Oe")
    expect(page.get_by_label("Sample mass (mg)", exact=True)).to_have_value("0.6100")
    expect(page.get_by_label("Temperature step (K) of the grid", exact=True)).to_have_value("0.100")
    expect(page.get_by_label("Field step μ0ΔH (T) of the grid", exact=True)).to_have_value("0.020")
    grid_caption = page.get_by_text(re.compile(r"Grid: \d{3} × \d{3} points \(ΔT = 0.1 K, μ0ΔH = [\d.]+ T\) from "
                                               r"the ((mean of the networks and RBF surface|(mean of the RBF surface and )?Arrott-plot interpolation along H) \(the networks: )?ensemble of \d+ (refined )?models"))
    expect(grid_caption).to_be_visible(timeout=ENTROPY_TIMEOUT)
    expect(page.get_by_role("heading", name="Figures of merit")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(1)  # |ΔS_M|(T), simulated (solid) and coarse (dashed)
    done = page.get_by_text("PNG: use the camera icon")  # the page's last line: its run is complete
    expect(done).to_be_visible()
    wait_idle(page)
    no_exception(page)
    expect(page.get_by_text("is not a clean peak")).to_have_count(0)  # no comb warning
    grid_text = grid_caption.inner_text()
    rows = read_grid(page, page.get_by_test_id("stDataFrame").first)  # the figures of merit (then "Measure next")
    wait_idle(page)
    expect(done).to_be_visible()
    shoot(page, shots, "06-entropy.png")

    # The table as the page shows it: source, ΔH (T), peak, T at peak, FWHM, RCP, RC, spikiness.
    merits: dict[tuple[str, float], dict[str, float]] = {}
    for row in rows:
        source = row["source"]
        key = "network" if source.startswith("answer") else "coarse" if source.startswith("coarse") else source
        merits[(key, number(row["ΔH (T)"]))] = {
            "peak": number(row["peak |ΔS_M| (J/kg K)"]),
            "T_peak": number(row["T at peak (K)"]),
            "spikiness": number(row["spikiness"]),
        }
    print(f"\n{grid_text}; figures of merit read from the Entropy page:")
    print(f"  {'ΔH (T)':>6}  {'source':8} {'peak (J/kg K)':>14} {'T_peak (K)':>10} {'spikiness':>9}")
    for (src, dh), m in sorted(merits.items(), key=lambda kv: (kv[0][1], kv[0][0] != "network")):
        print(f"  {dh:6g}  {src:8} {m['peak']:14.4f} {m['T_peak']:10.2f} {m['spikiness']:9.3f}")
    print(f"  runtime: {trained - started:.0f} s to a finished study, {refined - trained:.0f} s of refinement, "
          f"{time.monotonic() - started:.0f} s in all")
    assert {(s, dh) for s in ("network", "coarse") for dh in (1.0, 2.0, 3.0, 4.0, 5.0)} <= set(merits), rows

    sim5, coarse5 = merits[("network", 5.0)], merits[("coarse", 5.0)]
    grid = grid_text
    assert sim5["peak"] > 0 and math.isfinite(sim5["peak"]), sim5
    assert 30.0 <= sim5["T_peak"] <= 40.0, f"|ΔS_M| peak at {sim5['T_peak']} K, not at the ErCo2 transition ({grid})"
    assert sim5["spikiness"] <= 1.2, (
        f"|ΔS_M|(T) at ΔH = 5 T from the {grid} is spiky: spikiness {sim5['spikiness']:.3f} > 1.2 "
        f"(coarse data: {coarse5['spikiness']:.3f})"
    )
    assert coarse5["spikiness"] > sim5["spikiness"], (
        f"at ΔH = 5 T the coarse data's |ΔS_M| (spikiness {coarse5['spikiness']:.3f}) is not spikier than the "
        f"{grid}'s ({sim5['spikiness']:.3f})"
    )
    assert "Traceback" not in server.log.read_text()
