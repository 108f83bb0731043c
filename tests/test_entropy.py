"""|ΔS_M| against the exact synthetic truth, units, and figures of merit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mat_interp_core.entropy import (
    UnitError,
    delta_s,
    figures_of_merit,
    merit_bounds,
    peak_span,
    spikiness,
    to_specific_moment,
    to_tesla,
)
from mat_interp_core.synthetic import DEMO_MASS_MG, BeanRodbellMagnet, MeanFieldMagnet, demo_frame, truth_frame

TRUTH = dict(t_col="T_K", h_col="mu0H_T", m_col="M_Am2_per_kg", m_unit="A m2/kg", h_unit="T")
COARSE_FIELDS = (0.01, 0.1, 0.5, 1, 2, 3, 4, 5)
FINE_FIELDS = np.round(np.arange(0.01, 5.0101, 0.02), 6)  # H0 + ΔH lands on a node for ΔH = 1…5 T


# --------------------------------------------------------------------------- units


def test_moment_units() -> None:
    assert to_specific_moment(0.003, "emu", mass_mg=1.5) == pytest.approx(2.0)
    assert to_specific_moment(7.0, "emu/g") == 7.0
    assert to_specific_moment(7.0, "A m2/kg") == 7.0
    # 1 μB per formula unit of Gd (157.25 g/mol): N_A·μB/M = 5585/0.15725 A·m²/kg.
    assert to_specific_moment(1.0, "muB/f.u.", molar_mass_g=157.25) == pytest.approx(35.516, rel=1e-4)
    np.testing.assert_allclose(to_specific_moment([0.0015, 0.003], "emu", mass_mg=1.5), [1.0, 2.0])


def test_field_units() -> None:
    assert to_tesla(10_000.0, "Oe") == pytest.approx(1.0)
    assert to_tesla(50.0, "kOe") == pytest.approx(5.0)
    assert to_tesla(2.0, "T") == 2.0
    assert to_tesla(1e6, "A/m") == pytest.approx(1.2566370614, rel=1e-9)


@pytest.mark.parametrize(
    "call",
    [
        lambda: to_specific_moment(1.0, "emu"),  # mass missing
        lambda: to_specific_moment(1.0, "muB/f.u."),  # molar mass missing
        lambda: to_specific_moment(1.0, "emu", mass_mg=0.0),
        lambda: to_specific_moment(1.0, "Am2/kg"),
        lambda: to_tesla(1.0, "gauss"),
        lambda: to_tesla(1.0, "oe"),
    ],
)
def test_bad_units_raise(call) -> None:
    with pytest.raises(UnitError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert "mass" in str(info.value) or "allowed units" in str(info.value)


def test_unit_error_names_allowed_units() -> None:
    with pytest.raises(UnitError, match="'Oe', 'kOe', 'mT', 'T', 'A/m'"):
        to_tesla(1.0, "G")


# --------------------------------------------------------------------------- against the exact truth


@pytest.fixture(scope="module", params=[MeanFieldMagnet(), BeanRodbellMagnet(eta=0.5)], ids=repr)
def fine(request):
    """Maxwell and isothermal |ΔS_M| on a 0.05 K × 0.02 T grid, with the magnet."""
    magnet = request.param
    table = truth_frame(magnet, np.arange(10.0, 70.0001, 0.05), FINE_FIELDS)
    dhs = [1.0, 2.0, 3.0, 4.0, 5.0]
    return magnet, delta_s(table, **TRUTH, dh_tesla=dhs), delta_s(table, **TRUTH, dh_tesla=dhs, method="isothermal")


def test_fine_grid_matches_exact(fine) -> None:
    magnet, curves, _ = fine
    for dh, part in curves.groupby("dH_T"):
        exact = magnet.exact_delta_s(part["T_K"].to_numpy(), dh, 0.01)
        err = np.abs(part["dS_J_per_kgK"].to_numpy() - exact).max() / exact.max()
        assert err < 0.01, f"ΔH={dh} T: max error {err:.2%} of the peak"  # measured ≤ 0.4 %
        assert spikiness(part["T_K"], part["dS_J_per_kgK"]) < 1.05  # measured 0.82–0.96


def test_isothermal_agrees_with_maxwell(fine) -> None:
    magnet, maxwell, iso = fine
    for dh in (1.0, 3.0, 5.0):
        m = maxwell[maxwell.dH_T == dh]
        i = iso[iso.dH_T == dh]
        on_m = np.interp(i["T_K"], m["T_K"], m["dS_J_per_kgK"])
        assert np.abs(on_m - i["dS_J_per_kgK"]).max() < 0.02 * m["dS_J_per_kgK"].max()
        exact = magnet.exact_delta_s(i["T_K"].to_numpy(), dh, 0.01)
        assert np.abs(i["dS_J_per_kgK"] - exact).max() < 0.01 * exact.max()


def test_coarse_fields_show_spikes_fine_fields_do_not() -> None:
    """The artefact of linear interpolation along H, on an ErCo2-like first-order magnet.

    8 fields, 0.5 K steps (as in the paper's ErCo2 set): each field's sharp
    transition gives its own spike in the trapezoid sum. The same temperatures
    with a 0.02 T field grid give a clean peak. (A second-order magnet shows no
    such spikes: measured spikiness 0.93–0.99 on the coarse grid.)
    """
    magnet = BeanRodbellMagnet(eta=2.0)
    T = np.arange(5.0, 87.5001, 0.5)
    dhs = [1.0, 2.0, 3.0, 4.0, 5.0]
    coarse = figures_of_merit(delta_s(truth_frame(magnet, T, COARSE_FIELDS), **TRUTH, dh_tesla=dhs))
    fine = figures_of_merit(delta_s(truth_frame(magnet, T, FINE_FIELDS), **TRUTH, dh_tesla=dhs))
    assert coarse["spikiness"].min() > 1.5  # measured 1.74–1.90
    assert fine["spikiness"].max() < 1.05  # measured ≤ 0.999
    exact_peaks = np.array([magnet.exact_delta_s(T, dh, 0.01).max() for dh in dhs])
    # The spikes also overshoot the true peak (by ~25 %); the fine grid does not.
    assert np.all(coarse["peak_J_per_kgK"].to_numpy() > 1.1 * exact_peaks)
    assert np.all(fine["peak_J_per_kgK"].to_numpy() < 1.02 * exact_peaks)


def test_demo_data_in_user_units() -> None:
    """emu and Oe in, J/(kg·K) out: the demo chain reproduces the exact peak to a few %."""
    magnet = MeanFieldMagnet()
    df = demo_frame(magnet)
    curves = delta_s(
        df, t_col="T (K)", h_col="H (Oe)", m_col="moment (emu)", m_unit="emu", h_unit="Oe", mass_mg=DEMO_MASS_MG,
        dh_tesla=5.0,
    )
    assert list(curves.columns) == ["T_K", "dH_T", "dS_J_per_kgK"]
    assert np.all(curves["dS_J_per_kgK"] >= 0)
    # Jittered scans: a uniform grid over the overlap with the median spacing (~0.83 K).
    t = curves["T_K"].to_numpy()
    assert np.allclose(np.diff(t), np.diff(t)[0]) and 0.7 < np.diff(t)[0] < 1.0
    exact = magnet.exact_delta_s(t, 5.0, 0.01)
    assert abs(curves["dS_J_per_kgK"].max() - exact.max()) < 0.03 * exact.max()


# --------------------------------------------------------------------------- ΔH semantics


def _small_table() -> pd.DataFrame:
    return truth_frame(MeanFieldMagnet(), np.arange(20.0, 50.0, 1.0), COARSE_FIELDS)


def test_default_dh_is_one_curve_per_field() -> None:
    curves = delta_s(_small_table(), **TRUTH)
    np.testing.assert_allclose(sorted(curves["dH_T"].unique()), np.array(COARSE_FIELDS[1:]) - 0.01)


def test_dh_semantics() -> None:
    table = _small_table()
    full = delta_s(table, **TRUTH, dh_tesla=[4.99, 5.0, 0.99, 1.99, 1.5])
    get = lambda dh: full.loc[full.dH_T == dh, "dS_J_per_kgK"].to_numpy()  # noqa: E731
    # ΔH = 5 T from 0.01 T overshoots the 5 T field by H0: integrate to the highest field.
    np.testing.assert_allclose(get(5.0), get(4.99))
    # H0 + ΔH = 1.51 T lies between the 1 T and 2 T fields: the cumulative trapezoid is
    # interpolated linearly in H (ΔS ≤ 0 everywhere for this magnet, so |·| keeps it linear).
    np.testing.assert_allclose(get(1.5), get(0.99) + 0.51 * (get(1.99) - get(0.99)), rtol=1e-12)
    with pytest.raises(ValueError, match="ΔH = 6 T is not available"):
        delta_s(table, **TRUTH, dh_tesla=6.0)
    with pytest.raises(ValueError):
        delta_s(table, **TRUTH, dh_tesla=0.0)


def test_input_checks() -> None:
    table = _small_table()
    with pytest.raises(KeyError, match="M \\(emu\\)"):
        delta_s(table, t_col="T_K", h_col="mu0H_T", m_col="M (emu)", m_unit="emu", h_unit="T", mass_mg=1.0)
    with pytest.raises(UnitError):
        delta_s(table, t_col="T_K", h_col="mu0H_T", m_col="M_Am2_per_kg", m_unit="emu", h_unit="T")
    with pytest.raises(ValueError, match="method"):
        delta_s(table, **TRUTH, method="spline")
    with pytest.raises(ValueError, match="t_grid"):
        delta_s(table, **TRUTH, t_grid=np.arange(0.0, 60.0))
    curves = delta_s(table, **TRUTH, dh_tesla=1.0, t_grid=np.arange(25.0, 45.0, 0.5))
    assert curves["T_K"].min() == 25.0 and len(curves) == 40


# --------------------------------------------------------------------------- figures of merit


def test_figures_of_merit_on_a_gaussian() -> None:
    sigma, t0, peak = 3.0, 40.0, 10.0
    t = np.linspace(10.0, 70.0, 6001)
    y = peak * np.exp(-0.5 * ((t - t0) / sigma) ** 2)
    curves = pd.DataFrame({"T_K": t, "dH_T": 2.0, "dS_J_per_kgK": y})
    row = figures_of_merit(curves).iloc[0]
    fwhm = 2 * np.sqrt(2 * np.log(2)) * sigma  # 2.3548 σ
    assert row["peak_J_per_kgK"] == pytest.approx(peak)
    assert row["T_peak_K"] == pytest.approx(t0)
    assert row["FWHM_K"] == pytest.approx(fwhm, rel=1e-5)
    assert row["RCP_J_per_kg"] == pytest.approx(peak * fwhm, rel=1e-5)
    # Area within ±FWHM/2 = peak·σ·√(2π)·erf(√(ln 2)) = 0.7610 of the full area.
    from math import erf, log, pi, sqrt

    assert row["RC_J_per_kg"] == pytest.approx(peak * sigma * sqrt(2 * pi) * erf(sqrt(log(2))), rel=1e-5)
    assert row["spikiness"] == pytest.approx(1.0, abs=1e-4)


def test_figures_of_merit_edge_cases() -> None:
    t = np.linspace(0.0, 10.0, 101)
    rising = pd.DataFrame({"T_K": t, "dH_T": 1.0, "dS_J_per_kgK": t})  # never falls to half on the right
    row = figures_of_merit(rising).iloc[0]
    assert np.isnan(row["FWHM_K"]) and np.isnan(row["RCP_J_per_kg"]) and np.isnan(row["RC_J_per_kg"])
    assert row["peak_J_per_kgK"] == 10.0


def test_peak_temperature_band_is_where_the_upper_edge_reaches_the_lower_edges_top() -> None:
    """entropy.peak_span: on a Gaussian with a band of ±δ, the peak of any curve in the band lies where
    peak·exp(−(T−T0)²/2σ²) + δ ≥ peak − δ, i.e. |T − T0| ≤ σ·√(−2 ln(1 − 2δ/peak)); a broad peak (large σ) or a
    wide band gives a wide span, and merit_bounds carries it as T_peak_K_low and T_peak_K_high."""
    t = np.linspace(10.0, 70.0, 6001)
    for sigma, delta in ((3.0, 0.1), (12.0, 0.1), (3.0, 0.5)):
        y = 10.0 * np.exp(-0.5 * ((t - 40.0) / sigma) ** 2)
        lo, hi = peak_span(t, y - delta, y + delta)
        reach = sigma * np.sqrt(-2 * np.log(1 - 2 * delta / 10.0))
        assert (lo, hi) == (pytest.approx(40.0 - reach, abs=1e-3), pytest.approx(40.0 + reach, abs=1e-3))
        curves = pd.DataFrame({"T_K": t, "dH_T": 2.0, "dS_J_per_kgK": y, "dS_low": y - delta, "dS_high": y + delta})
        row = merit_bounds(curves, [3.0]).iloc[0]
        assert (row.T_peak_K_low, row.T_peak_K_high) == (pytest.approx(lo), pytest.approx(hi))
    # an upper edge that reaches the top at both ends of the range: the span runs to the range's ends
    assert peak_span(t, np.full_like(t, 1.0), np.full_like(t, 2.0)) == (10.0, 70.0)
    assert np.isnan(peak_span(t, np.full_like(t, np.nan), y)[0])  # no band


def test_spikiness_definition() -> None:
    t = np.arange(7.0)
    assert spikiness(t, [0, 1, 2, 3, 2, 1, 0]) == pytest.approx(1.0)
    assert spikiness(t, [0, 3, 1, 3, 1, 3, 0]) == pytest.approx((3 + 2 + 2 + 2 + 2 + 3) / 6)
    assert spikiness(t[::-1], [0, 1, 2, 3, 2, 1, 0]) == pytest.approx(1.0)  # order by T
    assert np.isnan(spikiness(t, np.zeros(7)))
