"""|ΔS_M| of an isotherm project (M(H) sweeps at fixed temperatures) on the Entropy page and in the CLI: the
roles swap, the coarse data and the baselines go through the isotherm path, the band says why it is missing
(no folds yet) or comes from held-out isotherms, and both front ends give the same figures (AppTest on a temporary SQLite database, one tiny trained network)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from helpers import tiny_space, transform_layer
from mat_interp_core import cli, entropy, models, projects, report, uncertainty, workers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import family  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")


@pytest.fixture(scope="module")
def iso_project(tmp_path_factory):
    base = tmp_path_factory.mktemp("isotherm_entropy")
    url = f"sqlite:///{base / 'app.db'}"
    case = family.isotherm_cases(1)[0]  # the first family magnet, measured as isotherms (emu and Oe, a mass)
    units = {"m_unit": case.units.m_unit, "h_unit": case.units.h_unit, "mass_mg": case.units.mass_mg,
             "x1": case.units.h_unit, "x2": "K", "y": case.units.m_unit, "temperature": "x2", "field": "x1",
             "magnetisation": True}
    space = tiny_space(layers=(2, 2), nodes=(24, 32), epochs=40, patience=40, min_resource=1000, keep_models=1,
                       refine_epochs=0, seed=0)
    projects.create_project(url, "iso", case.data(), space=space, n_trials=1, units=units)
    assert workers.run_worker(url, "iso", exit_when_idle=True, threads=1, poll_seconds=0.1) == 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MAT_INTERP_DATABASE_URL", url)
        mp.setenv("MAT_INTERP_HOME", str(base / "home"))
        yield url, case


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def test_entropy_page_and_cli_on_isotherms(iso_project, tmp_path) -> None:
    url, case = iso_project
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["project"] = "iso"
    at.switch_page("views/entropy.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, texts(at.error)
    assert any("T (K) is taken as the temperature in K" in c for c in texts(at.caption))
    assert f"H unit ({case.x1})" in [s.label for s in at.selectbox]
    merits = at.dataframe[0].value
    assert set(merits["source"]) == {report.NETWORK, report.COARSE}
    assert any("The band is not calibrated" in w for w in texts(at.warning)), texts(at.warning)  # no folds yet
    # the coarse data's own |ΔS_M| (isotherms on one field grid) is near the exact one at 5 T
    coarse = merits[(merits["source"] == report.COARSE) & (merits["dH_T"] == 5.0)].iloc[0]
    exact, _ = family.exact_peak(case, 5.0)
    assert abs(coarse["peak_J_per_kgK"] / exact - 1) < 0.15, (coarse["peak_J_per_kgK"], exact)
    at.checkbox(key="w_e_bl_pchip").check().run()
    assert not at.exception, [e.value for e in at.exception]
    merits = at.dataframe[0].value
    pchip = merits[(merits["source"] == report.BASELINE_LABELS["pchip"]) & (merits["dH_T"] == 5.0)].iloc[0]
    assert abs(pchip["peak_J_per_kgK"] / exact - 1) < 0.1, (pchip["peak_J_per_kgK"], exact)

    # the CLI with the page's defaults: the same network figures
    page = merits[merits["source"] == report.NETWORK].set_index("dH_T")
    dhs = ",".join(f"{v:g}" for v in page.index)
    out = tmp_path / "e.csv"
    assert cli.main(["entropy", "iso", "--dh", dhs, "--database", url, "--out", str(out)]) == 0
    figures = entropy.figures_of_merit(pd.read_csv(out, comment="#")).set_index("dH_T")
    np.testing.assert_allclose(figures["peak_J_per_kgK"], page["peak_J_per_kgK"], rtol=1e-6)


def test_isotherms_answered_by_the_networks_or_by_the_smallest_held_out_error(iso_project) -> None:
    """With the folds stored (interior isotherms held out), the networks answer by default; asked for "held-out",
    the candidate with the smallest held-out error answers: on this magnet PCHIP along the temperature
    (deterministic), within 4 % of the exact peak."""
    from mat_interp_core import choice, simulate

    url, case = iso_project
    assert workers.finish_project(projects.open_project(url, "iso"))  # the held-out folds
    # the networks see the field (X1 here) through the transform, the temperature linearly: search and folds alike
    project = projects.open_project(url, "iso")
    settings = project.study().user_attrs["calibration"]
    stored = models.load(project, [settings["reference"]] + uncertainty.fold_numbers(settings))
    assert len(stored) == len(uncertainty.fold_numbers(settings)) + 1
    assert {(transform_layer(m.model).kind, transform_layer(m.model).column) for m in stored} == {("asinh", 0)}
    default = simulate.project_entropy(projects.open_project(url, "iso"), case.units, dh_tesla=[1.0, 5.0])
    assert default.choice.loc[default.choice["answers"], "method"].item() == "network"
    # the networks' band: their field fold (mostly training scatter) at NETWORK_CALIBRATION, the held-out isotherms whole
    reference, folds, field_fold = uncertainty.stored_folds(project)
    full = uncertainty.calibrate_isotherms(folds, project.data, case.units, t_axis=default.t_axis, reference=reference,
                                           field_fold=field_fold)
    nets = default.calibration
    assert nets.isotherm and np.array_equal(nets.gap_error, full.gap_error) and full.t_error.max() > 0
    np.testing.assert_allclose(nets.t_error, uncertainty.NETWORK_CALIBRATION * full.t_error)
    result = simulate.project_entropy(projects.open_project(url, "iso"), case.units, dh_tesla=[1.0, 5.0],
                                      answer="held-out")
    table = result.choice
    assert list(table["method"]) == list(choice.candidates(isotherm=True)) and "arrott" not in set(table["method"])
    assert np.isfinite(table["error_J_per_kgK"]).all()  # no Arrott plot along the temperature
    best = table.loc[table["error_J_per_kgK"].idxmin(), "method"]
    assert table.loc[table["answers"], "method"].item() == best == "pchip"
    assert result.models.startswith("PCHIP along T (the networks: the best model")
    for dh, peak in zip(result.figures["dH_T"], result.figures["peak_J_per_kgK"]):
        exact, _ = family.exact_peak(case, dh)
        assert abs(peak / exact - 1) < 0.04, (dh, peak, exact)  # measured -3.5 % at 1 T: the isotherm spacing
    # the band of held-out isotherms (PCHIP and its folds are deterministic): it covers the exact peak
    assert "calibrated on held-out isotherms" in result.band_note and result.calibration.isotherm
    assert result.warnings == (uncertainty.isotherm_warning(result.calibration),) and result.warnings[0] in result.band_note
    for dh, peak, half in zip(result.figures["dH_T"], result.figures["peak_J_per_kgK"], result.figures["peak_band"]):
        exact, _ = family.exact_peak(case, dh)
        assert 0 < half < 0.3 * exact and abs(peak - exact) <= half, (dh, peak, half, exact)
    # it has a field-step part, from PCHIP fitted on every other field reading (linear along H: first order)
    cal = result.calibration
    assert cal.t_error is not None and cal.t_error.shape == cal.gap_error.shape and cal.t_error.max() > 0
    # and folds at the peak besides the evenly spread ones (the held-out score uses only those)
    settings = projects.open_project(url, "iso").study().user_attrs["calibration"]
    even = uncertainty.fold_fields(temps := projects.open_project(url, "iso").data.x2_values)
    assert set(even) < set(settings["folds"]) <= set(temps[1:-1])
    # measure next ranks the temperatures between isotherms: first the gap where the band is widest, by half of it
    table = uncertainty.suggestions(result.calibration, [1.0, 5.0], list(result.figures["T_peak_K"]))
    first = table.iloc[0]
    assert first.gap_from in temps and first.gap_to in temps
    assert first.x2 == pytest.approx((first.gap_from + first.gap_to) / 2)
    assert np.all(np.diff(table.reduction) <= 0) and 0 < first.reduction_pct <= 50
    # another isotherm halves the band between temperatures, not its field-step part
    between = uncertainty.band(dataclasses.replace(cal, t_error=None), [1.0, 5.0])
    band = between[between["T_K"].between(first.gap_from, first.gap_to)].groupby("dH_T")["dS_band"].max()
    assert first.reduction == pytest.approx(0.5 * band.mean(), rel=1e-6)
    assert cli.main(["suggest", "iso", "--dh", "1,5", "--database", url]) == 0


def test_isotherm_folds_add_the_isotherms_nearest_the_peak_to_the_evenly_spread_ones() -> None:
    """uncertainty.fold_fields(peak=...) and isotherms.peak_temperature on a family magnet's isotherms: the peak
    lies within one isotherm spacing of the exact |ΔS_M| peak at the largest field change, and up to three
    isotherms nearest it are held out besides the evenly spread six."""
    from mat_interp_core import isotherms

    case = family.isotherm_cases(1)[0]
    data = case.data()
    temps = data.x2_values
    peak = isotherms.peak_temperature(data)
    _, t_exact = family.exact_peak(case, max(case.dhs))
    assert abs(peak - t_exact) <= np.max(np.diff(temps)), (peak, t_exact)
    even = uncertainty.fold_fields(temps)
    folds = uncertainty.fold_fields(temps, peak=peak)
    near = temps[1:-1][np.argsort(np.abs(temps[1:-1] - peak))[:uncertainty.MAX_FOLDS // 2]]
    assert set(folds) == set(even) | set(near.tolist()) and folds == sorted(folds)
    assert uncertainty.fold_fields(temps[:3], peak=peak) == [float(temps[1])]  # one interior isotherm: itself
