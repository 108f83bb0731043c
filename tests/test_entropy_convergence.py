"""The simulated-grid integral converges from a first field at 0 T, and the TEC figure of merit.

The grid is the one `mat-interp entropy` and the Entropy page pick (entropy.fine_axes, then
simulated_delta_s); the predictor is the magnet's EXACT M, so every error is the integral's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mat_interp_core import entropy
from mat_interp_core.synthetic import BeanRodbellMagnet, MeanFieldMagnet

FIELDS_FROM_0 = (0.0, 0.01, 0.1, 0.5, 1, 2, 3, 4, 5)


class _Exact:
    """A predictor that returns the magnet's exact M in A·m²/kg (T in K, H in T)."""

    def __init__(self, magnet) -> None:
        self.magnet = magnet

    def predict(self, t, h):
        return self.magnet.magnetisation(t, h)


def _measured_axes(magnet, fields) -> tuple[np.ndarray, np.ndarray]:
    """A 1 K-step measurement from 0.85 T_C to 1.25 T_C at `fields` (only the axes matter)."""
    t = np.arange(0.85 * magnet.Tc, 1.25 * magnet.Tc + 1e-9, 1.0)
    return np.tile(t, len(fields)), np.repeat(np.asarray(fields, dtype=float), t.size)


@pytest.mark.parametrize(
    "magnet, fields",
    [
        (MeanFieldMagnet(J=3.5, Tc=35.0), FIELDS_FROM_0),  # η = 0 from 0 T: the singular case (+4 % before)
        (MeanFieldMagnet(J=3.5, Tc=35.0), FIELDS_FROM_0[1:]),  # η = 0 from 0.01 T
        (BeanRodbellMagnet(J=3.5, T0=35.0, eta=0.5), FIELDS_FROM_0),  # η = 0.5 from 0 T
    ],
    ids=["eta0-from-0T", "eta0-from-0.01T", "eta0.5-from-0T"],
)
def test_default_grid_integral_converges_on_exact_magnets(magnet, fields) -> None:
    x1, x2 = _measured_axes(magnet, fields)
    result = entropy.simulated_delta_s(_Exact(magnet), x1, x2, entropy.MagnetUnits("A m2/kg", "T"), dh_tesla=[1, 5])
    t_fine = np.arange(x1.min(), x1.max(), 0.005)
    for dh, part in result.curves.groupby("dH_T"):
        exact = magnet.exact_delta_s(t_fine, dh, fields[0])
        err = part["dS_J_per_kgK"].max() / exact.max() - 1
        assert abs(err) < 0.005, f"ΔH = {dh} T: peak error {100 * err:+.2f} %"
        t_peak = part["T_K"].to_numpy()[part["dS_J_per_kgK"].to_numpy().argmax()]
        assert abs(t_peak - t_fine[exact.argmax()]) < 0.3
        rmse = np.sqrt(np.mean((part["dS_J_per_kgK"] - magnet.exact_delta_s(part["T_K"].to_numpy(), dh, fields[0])) ** 2))
        assert rmse < 0.005 * exact.max()


def test_field_axis_crowds_towards_h0_and_keeps_whole_tesla_nodes() -> None:
    x1, x2 = _measured_axes(MeanFieldMagnet(), FIELDS_FROM_0)
    _, h = entropy.fine_axes(x1, x2, h_unit="T")
    steps = np.diff(h)
    assert h[0] == 0.0 and h[-1] == pytest.approx(5.0)
    assert steps[0] < 1e-5 and np.all(np.diff(steps[: int(np.argmax(h >= 1.0))]) > 0)  # growing up to 1 T
    assert steps.max() == pytest.approx(0.02, rel=1e-6)
    for dh in (1, 2, 3, 4):
        assert np.isclose(h, dh).any()


def test_tec_against_a_hand_computation() -> None:
    # A triangle 0 → 6 → 0 over 0…12 K in 1 K steps (peak 6 at 6 K, slopes ±1 per K):
    # a centred window of width L has mean 6 − L/4 (for L ≤ 12), so TEC(3) = 5.25, TEC(10) = 3.5.
    t = np.arange(0.0, 12.5, 1.0)
    y = 6 - np.abs(t - 6)
    curves = pd.DataFrame({"T_K": t, "dH_T": 1.0, "dS_J_per_kgK": y})
    row = entropy.figures_of_merit(curves).iloc[0]
    assert row[entropy.tec_column(3)] == pytest.approx(5.25, abs=1e-9)
    assert row[entropy.tec_column(10)] == pytest.approx(3.5, abs=1e-9)
    # user-set spans: 0.5 K → 6 − 0.125; a span longer than the curve → NaN
    row = entropy.figures_of_merit(curves, lifts=(0.5, 20)).iloc[0]
    assert row["TEC_0.5K_J_per_kgK"] == pytest.approx(5.875, abs=1e-9)
    assert np.isnan(row["TEC_20K_J_per_kgK"])
    # a lopsided plateau: the best 3 K window sits on the plateau, not around the spike's neighbour
    y2 = np.where((t >= 2) & (t <= 5), 4.0, 0.0)
    y2[9] = 7.0
    tec3 = entropy.tec(t, y2, 3.0)
    assert tec3 == pytest.approx(4.0, abs=1e-9)
    with pytest.raises(ValueError, match="ΔT_lift"):
        entropy.figures_of_merit(curves, lifts=(3, -1))


def test_entropy_cli_lift_option(sqlite_url, capsys) -> None:
    from helpers import demo_data, tiny_space

    from mat_interp_core import cli, projects, synthetic

    projects.create_project(sqlite_url, "lift", demo_data(), space=tiny_space(), n_trials=1,
                            units={"m_unit": "emu", "h_unit": "Oe", "mass_mg": synthetic.DEMO_MASS_MG})
    code = cli.main(["entropy", "lift", "--database", sqlite_url, "--from", "training", "--dh", "1,5"])
    out = capsys.readouterr().out
    assert code == 0 and "TEC_3K_J_per_kgK" in out and "TEC_10K_J_per_kgK" in out
    code = cli.main(["entropy", "lift", "--database", sqlite_url, "--from", "training", "--dh", "5", "--lift", "2,7.5"])
    out = capsys.readouterr().out
    assert code == 0 and "TEC_2K_J_per_kgK" in out and "TEC_7.5K_J_per_kgK" in out and "TEC_3K" not in out
    code = cli.main(["entropy", "lift", "--database", sqlite_url, "--from", "training", "--lift", "3,-1"])
    captured = capsys.readouterr()
    assert code == 2 and "--lift" in captured.err and "-1" in captured.err and captured.err.count("\n") == 1


def test_from_zero_field_the_band_says_the_cusp_is_rounded_off() -> None:
    """uncertainty.cusp_warning through simulate.with_band: data from a first field below ZERO_FIELD_T get one
    sentence (in band_note and in the result's warnings, which the Entropy page shows) that the |ΔS_M| cusp at T_C
    is rounded off by the temperature step; from 0.01 T or with no step, none; isotherms get the sentence that a
    sharp peak between two isotherms can escape their band."""
    import types

    from mat_interp_core import simulate, uncertainty

    def note(fields, t_step, temperatures=None):
        f = np.array(fields)
        cal = uncertainty.Calibration(f, f * 1e4, np.array([10.0, 11.0]), np.ones((f.size - 1, 2)), f,
                                      ("linear", 1.0), temperatures=temperatures)
        result = types.SimpleNamespace(
            curves=pd.DataFrame({"T_K": [10.0, 11.0], "dH_T": 1.0, "dS_J_per_kgK": [1.0, 2.0]}),
            figures=pd.DataFrame({"dH_T": [1.0], "T_peak_K": [11.0], "peak_J_per_kgK": [2.0]}))
        out = simulate.with_band(result, cal, t_step)
        return out.band_note, out.warnings

    for first in (0.0, 0.003):
        text, warnings = note((first, 0.01, 0.1, 1.0, 2.0), 1.5)
        assert len(warnings) == 1 and warnings[0] in text and "cusp at T_C that data 1.5 K apart" in text, text
    assert note((0.01, 0.1, 1.0, 2.0), 1.5)[1] == ()
    # where the low-field equation of state answered near T_C (simulate.low_field) the cusp is not rounded off:
    # no sentence, and the networks' band is as symmetric as from a higher first field
    f = np.array((0.0, 0.01, 0.1, 1.0, 2.0))
    cusp = uncertainty.Calibration(f, f * 1e4, np.array([10.0, 11.0]), np.ones((f.size - 1, 2)), f, ("linear", 1.0),
                                   sides=uncertainty.CUSP_SIDES)
    assert uncertainty.cusp_warning(cusp, 1.5) != ""
    resolved = uncertainty.with_low_field(cusp)
    assert uncertainty.cusp_warning(resolved, 1.5) == "" and resolved.sides == (uncertainty.NETWORK_SIDES,) * 2
    assert note((0.0, 0.01, 0.1, 1.0), 0.0)[1] == ()
    # isotherms: no cusp sentence, but one that a sharp peak between isotherms can escape the band
    warnings = note((0.0, 0.01, 0.1, 1.0), 1.5, temperatures=np.array([10.0, 12.0]))[1]
    assert warnings == (uncertainty.isotherm_warning(uncertainty.Calibration(
        np.zeros(2), np.zeros(2), np.zeros(1), np.zeros((1, 1)), np.zeros(2), ("linear", 1.0),
        temperatures=np.array([10.0, 12.0]))),) and "falls between two isotherms" in warnings[0]
