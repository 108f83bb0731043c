"""Interpolation baselines: exactness, leave-one-X2-out scoring, RBF model choice."""

from __future__ import annotations

import numpy as np
import pytest

from mat_interp_core.baselines import (
    X1_SUBDIVIDE,
    BASELINES,
    ArrottAlongX2,
    PchipCbrtAlongX2,
    LinearAlongX2,
    PchipAlongX2,
    RBFBaseline,
    leave_one_x2_out_rmse,
    make,
    mean_leave_one_x2_out_rmse,
    relative_scatter,
    smoothed_curve,
)
from mat_interp_core import entropy
from mat_interp_core.entropy import MagnetUnits
from mat_interp_core.synthetic import MeanFieldMagnet, demo_frame


@pytest.fixture(scope="module")
def demo():
    """Noise-free demo scans in user units (T in K, H in Oe, moment in emu), jittered temperatures."""
    df = demo_frame(noise=0.0)
    return df["T (K)"].to_numpy(), df["H (Oe)"].to_numpy(), df["moment (emu)"].to_numpy()


@pytest.fixture(scope="module")
def small():
    """A 7-curve, 30-point-per-curve set that the RBF search handles in seconds."""
    df = demo_frame(fields_T=(0.01, 0.5, 1, 2, 3, 4, 5), temperatures=np.linspace(10.0, 80.0, 30), noise=0.0)
    return df["T (K)"].to_numpy(), df["H (Oe)"].to_numpy(), df["moment (emu)"].to_numpy()


class _Constant:
    name = "constant"

    def fit(self, x1, x2, y):
        self.value = float(np.mean(y))
        return self

    def predict(self, x1, x2):
        return np.full(np.broadcast_shapes(np.shape(x1), np.shape(x2)), self.value)


@pytest.mark.parametrize("cls", [LinearAlongX2, PchipAlongX2, PchipCbrtAlongX2])
def test_curve_baselines_exact_on_training_points(cls, demo) -> None:
    x1, x2, y = demo
    model = cls().fit(x1, x2, y)
    np.testing.assert_allclose(model.predict(x1, x2), y, rtol=1e-12, atol=1e-15)
    assert model.name in BASELINES


def test_arrott_smooths_each_curve_along_t_and_follows_noise_free_readings(demo) -> None:
    """The Arrott interpolation smooths each curve along T first (along_x1 "smooth"): noise-free readings come
    back almost exactly, and on readings with 0.5 % noise its curves are nearer the magnet than the readings
    are, with ∂M/∂T along the lowest field free of the readings' node-to-node spikes."""
    x1, x2, y = demo
    assert ArrottAlongX2.along_x1 == "smooth" and ArrottAlongX2.name in BASELINES
    np.testing.assert_allclose(ArrottAlongX2().fit(x1, x2, y).predict(x1, x2), y, rtol=1e-3)
    temps = np.arange(20.0, 50.0, 0.25)
    clean = demo_frame(fields_T=(0.1, 1, 2, 3), temperatures=temps, noise=0.0, jitter_K=0.0)
    noisy = demo_frame(fields_T=(0.1, 1, 2, 3), temperatures=temps, noise=0.005, jitter_K=0.0)
    t, h, m = (noisy[c].to_numpy() for c in ("T (K)", "H (Oe)", "moment (emu)"))
    exact = clean["moment (emu)"].to_numpy()
    fitted = ArrottAlongX2().fit(t, h, m).predict(t, h)
    assert np.sqrt(np.mean((fitted - exact) ** 2)) < 0.5 * np.sqrt(np.mean((m - exact) ** 2))
    low = h == h.min()
    rough = lambda v: np.abs(np.diff(v[low], 2)).max()  # noqa: E731 - the largest second difference along T
    assert rough(fitted) < 0.3 * rough(m)


@pytest.mark.parametrize("cls", [LinearAlongX2, PchipAlongX2, PchipCbrtAlongX2, ArrottAlongX2])
def test_curve_baselines_clamp_and_shapes(cls, demo) -> None:
    x1, x2, y = demo
    model = cls().fit(x1, x2, y)
    T, H = np.meshgrid(np.linspace(5.0, 87.0, 13), np.linspace(0.0, 8e4, 11))
    assert model.predict(T, H).shape == (11, 13)
    assert model.predict(T[:, :, None], H[:, :, None]).shape == (11, 13, 1)
    assert model.predict(30.0, 2e4).shape == ()
    # Beyond the highest field: the 5 T curve, not an extrapolation.
    np.testing.assert_allclose(model.predict(T[0], 1e6), model.predict(T[0], 5e4))
    np.testing.assert_allclose(model.predict(T[0], -1.0), model.predict(T[0], 100.0))


def test_pchip_beats_linear_between_fields(demo) -> None:
    x1, x2, y = demo
    lin = leave_one_x2_out_rmse(LinearAlongX2, x1, x2, y)
    pch = leave_one_x2_out_rmse(PchipAlongX2, x1, x2, y)
    const = leave_one_x2_out_rmse(_Constant, x1, x2, y)
    assert sorted(lin) == [1000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0]  # interior only
    scale = np.ptp(y)
    for k in lin:
        assert np.isfinite(lin[k]) and 0 < lin[k] < 0.05 * scale  # measured ≤ 1.4 % of the range
        assert pch[k] < lin[k]
        assert const[k] > 5 * lin[k]
    assert mean_leave_one_x2_out_rmse(PchipAlongX2, x1, x2, y) == pytest.approx(np.mean(list(pch.values())))
    assert len(leave_one_x2_out_rmse(LinearAlongX2, x1, x2, y, interior_only=False)) == 8


def test_pchip_for_isotherms_follows_each_curve_along_x1_between_its_readings() -> None:
    """Isotherms' X1 is the field: M(H) rises steeply at low field, and straight steps between readings
    0.2 apart put |ΔS_M| several per cent off (bench/family.py --isotherms --t-order)."""
    h = np.arange(0.01, 5.0, 0.2)
    temps = np.array([10.0, 11.0, 12.0])
    x1, x2 = np.tile(h, temps.size), np.repeat(temps, h.size)
    truth = lambda a, b: np.sqrt(a) * (2.0 - 0.05 * b)  # noqa: E731 - a concave M(H) per isotherm
    y = truth(x1, x2)
    mid = (h[:-1] + h[1:]) / 2
    lin = LinearAlongX2().fit(x1, x2, y).predict(mid, 11.0)
    pch = make("pchip", isotherm=True).fit(x1, x2, y).predict(mid, 11.0)
    assert PchipAlongX2().fit(x1, x2, y).predict(mid, 11.0) == pytest.approx(lin)  # M(T) sweeps: linear along T
    np.testing.assert_allclose(lin, (truth(h[:-1], 11.0) + truth(h[1:], 11.0)) / 2, rtol=1e-12)  # the chords
    err_p, err_l = np.abs(pch - truth(mid, 11.0)), np.abs(lin - truth(mid, 11.0))
    assert np.all(err_p < err_l)  # on the steepest first steps too (a square root's start is no cubic)
    assert err_p[2:].max() < 0.1 * err_l[2:].max()


@pytest.mark.parametrize("fields", [(0.0, 1.0, 2.0, 3.0, 4.0, 5.0), (0.1, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)])
def test_arrott_follows_m_of_h_across_a_low_field_gap(fields) -> None:
    """Between the two lowest fields near T_C, where M(H) is far from straight (M ∝ H^(1/3) at T_C), the Arrott
    interpolation stays within 15 % of the magnet's M and within a third of PCHIP's error; a zero-field curve
    below T_C keeps its spontaneous moment."""
    magnet = MeanFieldMagnet(J=3.5, Tc=35.0, Ms=150.0)
    t, h = np.meshgrid(np.arange(20.0, 55.01, 0.5), np.asarray(fields))
    m = magnet.magnetisation(t.ravel(), h.ravel())
    arrott = ArrottAlongX2().fit(t.ravel(), h.ravel(), m)
    pchip = PchipAlongX2().fit(t.ravel(), h.ravel(), m)
    tq, hq = np.meshgrid(np.arange(33.0, 38.01, 0.5), np.linspace(fields[0], fields[1], 7)[1:-1])
    exact = magnet.magnetisation(tq.ravel(), hq.ravel())
    err_a = np.abs(arrott.predict(tq.ravel(), hq.ravel()) - exact)
    err_p = np.abs(pchip.predict(tq.ravel(), hq.ravel()) - exact)
    assert np.max(err_a / exact) < 0.15 and np.mean(err_a) < np.mean(err_p) / 3, (err_a.max(), err_p.max())
    below = np.array([25.0, 30.0])
    np.testing.assert_allclose(arrott.predict(below, np.full(2, fields[0])), magnet.magnetisation(below, fields[0]),
                               rtol=1e-4)  # each curve smoothed along T (noise-free: followed to ~1e-5)


@pytest.mark.parametrize("first, step, unit, capped, resampled", [
    (0.1, 2.0, "T", True, True), (1000.0, 2.0, "Oe", True, True),  # a real first field, coarse steps
    (0.1, 2.0, None, False, False),  # the field's unit not given
    (0.1, 1.0, "T", False, True), (0.1, 0.5, "T", False, True),  # 1 K steps and finer: PCHIP between readings
    (0.0, 2.0, "T", False, False), (0.003, 2.0, "T", False, False),  # a zero-field or remanent first curve
])
def test_arrott_caps_its_smoothing_only_on_coarse_steps_from_a_real_first_field(first, step, unit, capped,
                                                                                resampled) -> None:
    """The capped smoothing applies where it was measured to help (coarse steps from a real first field; README,
    fidelity, session 35), PCHIP between readings from any real first field when they barely scatter (session
    37); a zero-field or remanent first curve keeps straight steps."""
    rng = np.random.default_rng(1)
    temps = np.arange(20.0, 60.0, step)
    fields = np.array([first, 1.0, 2.0, 3.0]) * (1e4 if unit == "Oe" else 1.0)
    t, h = np.meshgrid(temps, fields)
    t = t + rng.uniform(-0.02, 0.02, t.shape)  # read-back jitter
    m = MeanFieldMagnet(J=3.5, Tc=35.0, Ms=150.0).magnetisation(t.ravel(), h.ravel() / (1e4 if unit == "Oe" else 1))
    model = make("arrott", h_unit=unit).fit(t.ravel(), h.ravel(), m + 1e-3)
    assert (model.capped, model.resampled) == (capped, resampled)
    nodes = np.unique(t).size
    assert model.x1_nodes.size == ((nodes - 1) * X1_SUBDIVIDE + 1 if resampled else nodes)


@pytest.mark.parametrize("noise, resampled", [(0.0, True), (1e-4, True), (1e-3, False), (5e-3, False)])
def test_arrott_resamples_finer_readings_only_when_they_barely_scatter(noise, resampled) -> None:
    """Finer readings from a real first field get PCHIP between them only below RESAMPLE_SCATTER: on noisy ones
    it carried single readings into spikes of ∂M/∂T (README, fidelity, session 37). The scatter is the noise."""
    rng = np.random.default_rng(2)
    t, h = np.meshgrid(np.arange(20.0, 60.0, 0.5), [0.1, 1.0, 2.0, 3.0])
    m = MeanFieldMagnet(J=3.5, Tc=35.0, Ms=150.0).magnetisation(t.ravel(), h.ravel())
    m = m * (1 + noise * rng.standard_normal(m.size))
    model = make("arrott", h_unit="T").fit(t.ravel(), h.ravel(), m)
    assert (model.capped, model.resampled) == (False, resampled)
    assert relative_scatter(t.ravel(), h.ravel(), m) == pytest.approx(noise, rel=0.3, abs=2e-5)


@pytest.mark.parametrize("tc, j", [(35.0, 3.5), (60.0, 2.0)])
def test_arrott_between_readings_follows_the_peak_straight_steps_flatten(tc, j) -> None:
    """Noise-free readings 1 K apart from 0.1 T: with PCHIP between readings (the field's unit given) the Arrott
    interpolation's |ΔS_M| peak is within 0.35 % of the exact one; with straight steps (no unit) it is a
    staircase 0.5–0.8 % low, its top a step wide (README, fidelity, session 37)."""
    magnet = MeanFieldMagnet(J=j, Tc=tc, Ms=150.0)
    t, h = np.meshgrid(np.arange(tc - 15, tc + 15.01, 1.0) + 0.3, [0.1, 0.5, 1.0, 2.0, 3.0])
    m = magnet.magnetisation(t.ravel(), h.ravel())
    errors = {}
    for unit in ("T", None):
        model = make("arrott", h_unit=unit).fit(t.ravel(), h.ravel(), m)
        result = entropy.simulated_delta_s(model, t.ravel(), h.ravel(), MagnetUnits("A m2/kg", "T"), dh_tesla=[1, 2])
        for dh, part in result.curves.groupby("dH_T"):
            fine = np.arange(part["T_K"].min(), part["T_K"].max(), 0.005)
            exact = magnet.exact_delta_s(fine, float(dh), 0.1).max()
            errors[unit, dh] = abs(part["dS_J_per_kgK"].max() / exact - 1)
    for dh in (1, 2):
        assert errors["T", dh] < 0.0035 and errors[None, dh] > 0.004


def test_arrott_falls_back_to_pchip_in_cbrt_h_on_data_that_is_no_magnet(small) -> None:
    x1, x2, y = small
    arrott = ArrottAlongX2().fit(x1, x2, -y)  # a negative "moment": no Arrott plot
    pchip = PchipCbrtAlongX2()
    pchip.along_x1 = "smooth"  # as Arrott's curves are
    pchip.fit(x1, x2, -y)  # tabulated on the fine field grid: equal within 0.1 % of the range
    np.testing.assert_allclose(arrott.predict(x1, x2 * 0.7), pchip.predict(x1, x2 * 0.7), rtol=0, atol=1e-3 * np.ptp(y))


def test_rbf_chooses_params_and_beats_constant(small) -> None:
    x1, x2, y = small
    heldout = 2e4
    train = x2 != heldout
    model = RBFBaseline().fit(x1[train], x2[train], y[train])
    assert {"kernel", "epsilon", "smoothing", "cv_rmse"} <= set(model.params)
    assert model.params["kernel"] in ("thin_plate_spline", "cubic", "quintic", "multiquadric", "gaussian")
    assert np.isfinite(model.params["cv_rmse"])
    pred = model.predict(x1[~train], x2[~train])
    rmse = np.sqrt(np.mean((pred - y[~train]) ** 2))
    const = np.sqrt(np.mean((y[train].mean() - y[~train]) ** 2))
    assert rmse < 0.05 * const  # measured 0.015
    T, H = np.meshgrid(np.linspace(10.0, 80.0, 7), np.linspace(100.0, 5e4, 5))
    assert model.predict(T, H).shape == (5, 7)


def test_rbf_uses_neighbors_on_large_sets() -> None:
    rng = np.random.default_rng(1)
    x1 = np.tile(np.linspace(5.0, 80.0, 300), 8)
    x2 = np.repeat(np.linspace(0.0, 5.0, 8), 300)
    y = MeanFieldMagnet().magnetisation(x1, x2 + 0.01) + rng.normal(0, 0.01, x1.size)
    model = RBFBaseline(kernels=("thin_plate_spline",), smoothings=(1e-4,), cv_folds=2).fit(x1, x2, y)
    assert model.params["neighbors"] == 96
    pred = model.predict(x1[:50], x2[:50])
    assert np.sqrt(np.mean((pred - y[:50]) ** 2)) < 1.0


def test_unfitted_and_bad_inputs() -> None:
    with pytest.raises(RuntimeError):
        LinearAlongX2().predict([1.0], [1.0])
    with pytest.raises(ValueError, match="equal shapes"):
        LinearAlongX2().fit([1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        PchipAlongX2().fit([1.0, np.nan], [1.0, 2.0], [1.0, 2.0])
