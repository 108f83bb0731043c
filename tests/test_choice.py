"""The held-out score that chooses which method answers a project's |ΔS_M| (mat_interp_core.choice).

Exact predictors and predictors with a known error at the held-out values: the score is zero for the truth
and the carried error for a known misfit, for M(T) sweeps and for isotherms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mat_interp_core import choice, dataset, synthetic, uncertainty
from mat_interp_core.baselines import RESAMPLE_SCATTER, relative_scatter
from mat_interp_core.entropy import MagnetUnits

MAGNET = synthetic.MeanFieldMagnet(J=3.5, Tc=35.0, Ms=150.0)
UNITS = MagnetUnits("A m2/kg", "T")


class Exact:
    """The magnet itself as a predictor of M(T, H) (H in tesla), plus an optional error at one field."""

    def __init__(self, bad_field: float | None = None, slope: float = 0.0, swapped: bool = False) -> None:
        self.bad_field, self.slope, self.swapped = bad_field, slope, swapped

    def predict(self, a, b):
        t, h = (b, a) if self.swapped else (a, b)
        t, h = np.broadcast_arrays(np.asarray(t, float), np.asarray(h, float))
        m = MAGNET.magnetisation(t, h)
        if self.bad_field is not None:
            m = m + np.where(np.isclose(h if not self.swapped else t, self.bad_field), self.slope * t
                             if not self.swapped else self.slope, 0.0)
        return m


def _mt_data() -> dataset.TrainingData:
    fields = (0.5, 1.0, 2.0, 3.0, 5.0)
    t = np.arange(20.0, 55.01, 0.5)
    frame = pd.DataFrame([(tt, h, float(MAGNET.magnetisation(np.array([tt]), np.array([h]))[0]))
                          for h in fields for tt in t], columns=["T", "H", "M"])
    return dataset.validate(frame, "T", "H", "M")


def test_mt_score_is_zero_for_the_truth_and_carries_a_slope_error() -> None:
    data = _mt_data()
    held = uncertainty.fold_fields(data.x2_values)
    assert held == [1.0, 2.0, 3.0]
    assert choice.held_out_error({h: Exact() for h in held}, data, UNITS, isotherm=False) == pytest.approx(0, abs=1e-6)
    # a fold whose M at 2 T is off by 0.1·T: ∂e/∂T = 0.1 A·m²/(kg·K), over the double gap 1 → 3 T (half-width 1 T)
    folds = {h: Exact(2.0 if h == 2.0 else None, 0.1) for h in held}
    expected = np.sqrt(0.1**2 / 3)  # one fold of three has the error 0.1 J/(kg·K)
    assert choice.held_out_error(folds, data, UNITS, isotherm=False) == pytest.approx(expected, rel=1e-3)


def test_isotherm_score_carries_an_offset_through_the_field_integral() -> None:
    temps = (30.0, 32.0, 34.0, 36.0, 38.0)
    h = np.arange(0.0, 3.001, 0.1)
    frame = pd.DataFrame([(hh, tt, float(MAGNET.magnetisation(np.array([tt]), np.array([hh]))[0]))
                          for tt in temps for hh in h], columns=["H", "T", "M"])
    data = dataset.validate(frame, "H", "T", "M")  # isotherms: X1 the field, X2 the temperature
    held = uncertainty.fold_fields(data.x2_values)
    assert choice.held_out_error({t: Exact(swapped=True) for t in held}, data, UNITS, isotherm=True) == \
        pytest.approx(0, abs=1e-9)
    # M at 34 K off by 0.5 A·m²/kg at every field: ∫ over 3 T = 1.5, over the half double gap 2 K: 0.75 J/(kg·K)
    folds = {t: Exact(34.0 if t == 34.0 else None, 0.5, swapped=True) for t in held}
    assert choice.held_out_error(folds, data, UNITS, isotherm=True) == pytest.approx(np.sqrt(0.75**2 / 3), rel=1e-6)


def test_baseline_folds_leave_out_the_networks_rows_and_rbf_keeps_its_settings() -> None:
    data = _mt_data()
    from mat_interp_core.baselines import RBFBaseline

    x, y = data.arrays()
    rbf = RBFBaseline(kernels=("thin_plate_spline",), smoothings=(0.0,)).fit(x[:, 0], x[:, 1], y)
    folds, t_fold = choice.baseline_folds(data, "rbf", rbf)
    assert sorted(folds) == [1.0, 2.0, 3.0] and t_fold is not None
    assert all(f.kernel == "thin_plate_spline" for f in folds.values())
    # a fold did not see its field: it does not reproduce it exactly, the full fit does
    sel = data.set_points.mask(2.0)
    assert np.abs(rbf.predict(x[sel, 0], x[sel, 1]) - y[sel]).max() < 1e-6
    assert np.abs(folds[2.0].predict(x[sel, 0], x[sel, 1]) - y[sel]).max() > 1e-3


def test_isotherm_field_fold_error_is_the_running_maximum_of_the_integrated_slope_difference() -> None:
    """uncertainty.field_fold_error: a fold on every other field reading that differs from the answer by
    0.1·T·H (A·m²/kg, H in kOe) changes ∂M/∂T by 0.1·H, so |ΔS_M| integrated from the lowest field by
    0.1·(H² − H0²)/2 (H in tesla: 10 kOe per tesla), summed step by step; first order: the difference itself."""
    from mat_interp_core import entropy, uncertainty

    class Model:
        def __init__(self, k: float) -> None:
            self.k = k

        def predict(self, h, t):
            return self.k * np.asarray(t) * np.asarray(h) / 10.0  # h in kOe -> 0.1·T·H with H in tesla

    grid_t = np.linspace(0.1, 2.0, 41)
    t_axis = np.linspace(10.0, 20.0, 11)
    steps = uncertainty.field_fold_error(Model(0.0), Model(0.1), grid_t, t_axis, entropy.MagnetUnits("A m2/kg", "kOe"))
    assert steps.shape == (grid_t.size - 1, t_axis.size) and np.all(steps >= 0)
    expected = 0.1 * (grid_t[1:] ** 2 - grid_t[0] ** 2) / 2 / (2.0 ** uncertainty.T_ORDER - 1.0)
    np.testing.assert_allclose(np.cumsum(steps, axis=0), np.repeat(expected[:, None], t_axis.size, axis=1),
                               rtol=1e-9)



@pytest.mark.parametrize("noise", [0.0, 5e-3])
def test_arrott_folds_treat_finer_readings_as_the_answer_does(noise) -> None:
    """The Arrott interpolation's held-out folds and temperature fold go between readings as its answer does
    (PCHIP on barely scattering readings, straight steps on noisy ones), whatever their own fewer readings
    would decide: the band's Richardson estimate compares one method at two steps. Here every other reading of a
    sharp noise-free transition scatters about its cubic more than the limit."""
    magnet = synthetic.BeanRodbellMagnet(J=0.5, T0=11.5, eta=0.52)
    frame = synthetic.demo_frame(magnet, fields_T=(0.01, 0.1, 0.5, 1, 2, 3), temperatures=np.arange(7.0, 25.0, 0.5),
                                 noise=noise)
    data = dataset.validate(frame, "T (K)", "H (Oe)", "moment (emu)")
    x, y = data.arrays()
    rows = uncertainty.temperature_fold_rows(data)
    assert relative_scatter(x[rows, 0], data.x2_set_point[rows], y[rows]) > RESAMPLE_SCATTER
    model = choice.make("arrott", False, "Oe").fit(x[:, 0], data.x2_set_point, y)
    assert model.resampled is (noise == 0.0)
    folds, t_fold = choice.baseline_folds(data, "arrott", model)
    assert folds and t_fold is not None
    assert all(fold.resampled is model.resampled for fold in [*folds.values(), t_fold])
