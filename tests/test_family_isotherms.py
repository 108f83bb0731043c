"""The family benchmark's isotherm cases (bench/family.py --isotherms): M(H) sweeps at fixed temperatures,
scored against the exact |ΔS_M| the same way as the M(T) cases."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import family  # noqa: E402

from mat_interp_core import entropy, isotherms  # noqa: E402


@pytest.fixture(scope="module")
def cases() -> list[family.Case]:
    return family.isotherm_cases()


def test_isotherm_cases_are_the_family_magnets_measured_as_isotherms(cases) -> None:
    source = family.family_cases()[::4]
    assert [c.name for c in cases] == [f"{s.name}-iso" for s in source]
    assert [c.magnet for c in cases] == [s.magnet for s in source]
    assert [c.units for c in cases] == [s.units for s in source]
    assert {c.units.m_unit for c in cases} == {"emu", "A m2/kg", "muB/f.u."}
    assert {c.units.h_unit for c in cases} == {"Oe", "kOe", "T"}
    for case in cases:
        assert case.isotherm and case.x2 == "T (K)" and case.x1.startswith("H (")
        data = case.data()
        # the jittering temperature read-backs group into one set point per isotherm, ΔT apart
        steps = np.diff(data.x2_values)
        assert 12 <= len(data.x2_values) <= 41 and data.set_points.jittered
        np.testing.assert_allclose(steps, case.t_step, atol=0.05)
        assert data.frame[case.x2].nunique() > 10 * len(data.x2_values)
        # every isotherm sweeps 0.01 T … 5 T in its own file unit
        h = entropy.to_tesla(data.frame[case.x1].to_numpy(), case.units.h_unit)
        for k in range(len(data.x2_values)):
            sel = data.set_points.labels == k
            assert h[sel].min() == pytest.approx(0.01) and h[sel].max() == pytest.approx(5.0)
        assert case.fields_T == (0.01, 5.0) and case.dhs == family.DHS
    # the frame is in file units: back in A·m²/kg and T it is the exact magnet (a noise-free case)
    case = next(c for c in cases if c.noise == 0)
    t = case.frame[case.x2].to_numpy()
    h = entropy.to_tesla(case.frame[case.x1].to_numpy(), case.units.h_unit)
    m = entropy.to_specific_moment(case.frame[case.y].to_numpy(), case.units.m_unit, mass_mg=case.units.mass_mg,
                                   molar_mass_g=case.units.molar_mass_g)
    np.testing.assert_allclose(m, case.magnet.magnetisation(t, h), rtol=1e-9)


class _ExactInFileUnits:
    """The magnet itself as a predictor of M(H, T) in the case's file units (X1 the field, X2 the temperature)."""

    def __init__(self, case: family.Case) -> None:
        self.case = case
        self.per = family._per_file_unit(case.units.m_unit, case.units.mass_mg, case.units.molar_mass_g)

    def predict(self, h, t):
        h_t = entropy.to_tesla(np.asarray(h, dtype=float), self.case.units.h_unit)
        return self.case.magnet.magnetisation(np.asarray(t, dtype=float), h_t) / self.per


def test_matched_isotherm_cases_take_their_m_t_case_temperature_step() -> None:
    """--isotherms --matched: the same magnets at their M(T) cases' temperature steps, in a window around T_C,
    within the point budget, the jittering temperatures still grouping into one set point per isotherm."""
    source = family.family_cases()[::4]
    for case, src in zip(family.isotherm_cases(matched=True), source):
        assert case.name == f"{src.name}-iso-matched" and case.t_step == src.t_step
        data = case.data()
        assert len(data.frame) <= family.MAX_POINTS and data.set_points.jittered
        np.testing.assert_allclose(np.diff(data.x2_values), src.t_step, atol=0.05 * src.t_step + 1e-3)
        assert data.x2_values[0] < case.magnet.T0 < data.x2_values[-1]


def test_the_exact_magnet_through_the_isotherm_path_scores_near_zero(cases) -> None:
    """The scoring is consistent with the isotherm path: the magnet itself as the model scores ~0 % (second-order
    case) — the same lowest field, the same units and the same temperature range on both sides."""
    case = next(c for c in cases if c.magnet.eta < 1 / 3 and c.noise == 0)
    sim = isotherms.isotherm_entropy(case.data(), case.units, _ExactInFileUnits(case), dh_tesla=list(case.dhs))
    rows = pd.DataFrame(family.score(case, "exact", sim, 0.0))
    assert list(rows["dH_T"]) == list(case.dhs)
    assert rows["peak_err_pct"].abs().max() < 0.5, rows[["dH_T", "peak_err_pct", "dT_peak"]]
    assert rows["dT_peak"].abs().max() < 0.2


def test_baselines_and_direct_on_an_isotherm_case(cases) -> None:
    case = cases[0]  # 12 isotherms, 26 fields each
    rows = pd.DataFrame(family.run_baselines(case, only=["linear", "pchip"]))
    assert set(rows["method"]) == {"direct", "linear", "pchip"}
    assert set(rows["dH_T"]) == set(case.dhs)
    assert np.isfinite(rows[["peak_err_pct", "dT_peak", "rmse"]].to_numpy()).all()
    assert (rows.groupby("dH_T")["exact_peak"].nunique() == 1).all()  # every method scored against one exact peak
    # "direct" is the coarse-data result: its temperatures are the isotherms' set points
    direct = isotherms.isotherm_entropy(case.data(), case.units, None, dh_tesla=list(case.dhs))
    np.testing.assert_allclose(np.unique(direct.curves["T_K"]), case.data().x2_values)
    text = family.summary(rows)
    assert "direct" in text and "iso-" in text


def test_the_sampling_reference_is_the_magnet_at_the_measured_temperatures(cases) -> None:
    """bench/family.py's ExactSampled: the exact magnet at every field, known only at the data's temperatures
    (the isotherms' set points, or an M(T) curve's readings) and interpolated along T between them."""
    iso = cases[0]
    exact = _ExactInFileUnits(iso)
    temps = iso.data().x2_values
    h = np.full(temps.size, 0.37 * 1e4)  # an unmeasured field (the case's unit is Oe)
    sampled = family.ExactSampled(iso, "sampled-pchip")
    np.testing.assert_allclose(sampled.predict(h, temps), exact.predict(h, temps), rtol=1e-9)
    between = 0.5 * (temps[:-1] + temps[1:])
    assert np.abs(sampled.predict(h[1:], between) / exact.predict(h[1:], between) - 1).max() > 1e-4
    m_t = min((c for c in family.family_cases() if c.h0 == 0), key=lambda c: len(c.frame))  # M(T): X1 the temperature
    rows = pd.DataFrame(family.run_baselines(m_t, only=["sampled-pchip"]))
    assert set(rows["method"]) == {"direct", "sampled-pchip"}
    # from 0 T the exact |ΔS_M|(T) has a cusp at T_C that a smooth fit of the samples rounds off: below the peak
    assert (rows.loc[rows["method"] != "direct", "peak_err_pct"] < 0).all(), rows
