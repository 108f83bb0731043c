"""A Quantum Design .dat file through the app in a real headless Chromium (Debian's /usr/bin/chromium).

The browser version of tests/test_app_instrument.py's first and last tests: a user drops an MPMS3 `.dat`
(made by mat_interp_core.synthetic, 7 M(T) sweeps whose field is read back with ±1 Oe of jitter and a
4 Oe remanent offset at the lowest) on the Data page and sees the columns chosen, the set points found,
the units and the sample mass read from the header; the Train page creates the project with those units;
the Projects page lists the file's name and SHA-256. The server runs with local workers off
(MAT_INTERP_LOCAL_WORKERS=0): the project is created, no trial is trained.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest
from browser import goto_page, number, read_grid, screenshot_folder, shoot, wait_idle

from mat_interp_core import projects, synthetic

pytestmark = pytest.mark.browser

T, H, M = "Temperature (K)", "Magnetic Field (Oe)", "Moment (emu)"
FIELDS_OE = (100, 1000, 5000, 10000, 20000, 35000, 50000)
NO_WORKERS = {"MAT_INTERP_LOCAL_WORKERS": "0"}
PROJECT = "qd-browser"


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    return screenshot_folder("MAT_INTERP_SCREENSHOTS", "screenshots", request)


def test_quantum_design_dat_upload_train_and_provenance(start_server, browser_page, screenshots, tmp_path):
    from playwright.sync_api import expect

    dat = tmp_path / "mt_7fields.dat"
    raw = synthetic.quantum_design_dat(fields_Oe=FIELDS_OE, mass_mg=synthetic.DEMO_MASS_MG, field_jitter_Oe=1.0,
                                       remanence_Oe=4.0, seed=3)
    dat.write_bytes(raw)
    # The premise: the file's field column is hundreds of distinct read-backs, not 7 values.
    lines = raw.decode("latin-1").split("\r\n")
    header = lines.index("[Data]") + 1
    table = pd.read_csv(dat, skiprows=header, encoding="latin-1")
    readings = pd.to_numeric(table[H], errors="coerce").dropna()
    assert readings.nunique() > 600 and table[H].isna().sum() == 7  # 7 comment rows, one per sweep

    server = start_server(NO_WORKERS)
    page = browser_page

    # --- Data: drop the .dat on the uploader.
    page.goto(server.url, wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name="Data", exact=True, level=1)).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(dat))
    ready = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Ready:")
    expect(ready).to_be_visible()
    wait_idle(page)
    # the columns chosen from the 60 in the file
    for label, column in (("X1: the scanned axis (e.g. temperature)", T), ("X2: the few fixed values (e.g. field)", H),
                          ("Y: the measured quantity", M)):
        expect(page.get_by_role("combobox", name=label, exact=True)).to_have_value(column)
    # the jittering read-backs grouped into the 7 set points, each near its nominal field (the lowest 4 Oe off)
    text = ready.inner_text()
    match = re.search(r"Ready: 697 points on (\d+) values of Magnetic Field \(Oe\) \(([^)]*)\); set points of "
                      r"jittering read-backs, grouped with tolerance 0\.1\.", text)
    assert match, text
    assert int(match.group(1)) == len(FIELDS_OE)
    shown = [float(v) for v in match.group(2).split(", ")]
    assert shown == pytest.approx([f + (4.0 if i == 0 else 0.0) for i, f in enumerate(FIELDS_OE)], abs=1.5)
    picker = page.get_by_test_id("stMultiSelect").filter(has_text="values to train on")
    chips = picker.get_by_role("button", name=re.compile(r"^Remove "))  # one chip per set point, all chosen
    expect(chips).to_have_count(len(FIELDS_OE))
    assert [float(t) for t in picker.locator("[data-tag]").all_inner_texts()] == pytest.approx(shown, rel=1e-4)
    expect(page.get_by_text("Dropped 3 rows with an empty 'Moment (emu)'")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Standard error of the moment kept from column 'M\. Std\. Err\. \(emu\)'"))
           ).to_be_visible()
    expect(page.get_by_text(f"Roles from the headers: temperature '{T}', field '{H}'; protocol M(T).")).to_be_visible()
    # the units and the sample mass from the file's header, in the widgets a user would change
    expect(page.get_by_label(f"Unit of X1 ({T})", exact=True)).to_have_value("K")
    expect(page.get_by_label(f"Unit of X2 ({H})", exact=True)).to_have_value("Oe")
    expect(page.get_by_label(f"Unit of Y ({M})", exact=True)).to_have_value("emu")
    expect(page.get_by_role("combobox", name="M unit", exact=True)).to_have_value("emu")
    expect(page.get_by_role("combobox", name="H unit", exact=True)).to_have_value("Oe")
    expect(page.get_by_label("Sample mass (mg)", exact=True)).to_have_value(f"{synthetic.DEMO_MASS_MG:.4f}")
    expect(page.get_by_text(f"File: SAMPLE_MASS {synthetic.DEMO_MASS_MG / 1e3:g} g = {synthetic.DEMO_MASS_MG:g} mg")
           ).to_be_visible()
    expect(page.get_by_text("enter the sample mass")).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.locator(".js-plotly-plot")).to_have_count(2)
    wait_idle(page)
    shoot(page, screenshots, "instrument-01-data.png")

    # --- Train: the page states the data; create the project (no local workers: nothing trains).
    goto_page(page, "Train")
    expect(page.get_by_text(f"Data: mt_7fields.dat — 697 points; X1 = {T}, X2 = {H} (7 values), Y = {M}.")
           ).to_be_visible()
    name_box = page.get_by_label("Project name", exact=True)
    name_box.fill(PROJECT)
    name_box.press("Enter")
    expect(name_box).to_have_value(PROJECT)
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_text(f"Project {PROJECT} created. Local workers are off")).to_be_visible()
    wait_idle(page)
    # list_projects(url) reads the stored project both before and after the (url, name) -> handle migration
    p = next(p for p in projects.list_projects(server.database_url) if p.name == PROJECT)
    units = p.units
    assert (p.x1_name, p.x2_name, p.y_name, p.n_rows) == (T, H, M, 697)
    assert (units["x1"], units["x2"], units["y"], units["m_unit"], units["h_unit"]) == ("K", "Oe", "emu", "emu", "Oe")
    assert units["mass_mg"] == pytest.approx(synthetic.DEMO_MASS_MG) and units["protocol"] == "M(T)"
    assert len(units["set_points"]) == len(FIELDS_OE)

    # --- Projects: the source file's name, size and SHA-256.
    goto_page(page, "Projects")
    frames = page.get_by_test_id("stDataFrame")
    expect(frames).to_have_count(2)  # the projects, then the chosen project's source files
    expect(page.get_by_text(re.compile(r"7 set points of Magnetic Field \(Oe\) \(tolerance 0\.1\); protocol M\(T\); "
                                       r"sweep warming; sample mass 1\.5 mg \(from the file's SAMPLE_MASS\)"))).to_be_visible()
    rows = read_grid(page, frames.nth(1))
    assert [r["source file"] for r in rows] == ["mt_7fields.dat"], rows
    assert rows[0]["SHA-256"] == hashlib.sha256(raw).hexdigest()
    assert number(rows[0]["bytes"]) == len(raw)
    wait_idle(page)
    shoot(page, screenshots, "instrument-02-projects.png")
    assert "Traceback" not in server.log.read_text()
