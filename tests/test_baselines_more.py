"""The paper's whole comparison set: cubic spline along X2 and scikit-learn's kernel ridge, random forest and MLP."""

from __future__ import annotations

import numpy as np
import pytest

from mat_interp_core.baselines import (
    BASELINES,
    ForestBaseline,
    KernelRidgeBaseline,
    LinearAlongX2,
    MLPBaseline,
    SplineAlongX2,
    leave_one_x2_out_rmse,
)
from mat_interp_core.synthetic import demo_frame

SKLEARN = [KernelRidgeBaseline, ForestBaseline, MLPBaseline]


@pytest.fixture(scope="module")
def small():
    """7 noise-free curves × 30 temperatures in emu and Oe."""
    df = demo_frame(fields_T=(0.01, 0.5, 1, 2, 3, 4, 5), temperatures=np.linspace(10.0, 80.0, 30), noise=0.0)
    return df["T (K)"].to_numpy(), df["H (Oe)"].to_numpy(), df["moment (emu)"].to_numpy()


def test_registry_has_the_papers_comparison_set_and_the_field_shaped_ones() -> None:
    assert set(BASELINES) == {"linear", "pchip", "pchip-cbrt", "arrott", "spline", "rbf", "krr", "forest", "mlp"}
    for key, cls in BASELINES.items():
        assert cls.name == key


def test_spline_is_exact_at_the_curves_and_smooth_between(small) -> None:
    x1, x2, y = small
    model = SplineAlongX2().fit(x1, x2, y)
    np.testing.assert_allclose(model.predict(x1, x2), y, rtol=1e-10, atol=1e-15)
    # a cubic in X2: exact on data that is cubic in X2 (where linear interpolation is not)
    t = np.tile(np.linspace(0.0, 1.0, 5), 5)
    h = np.repeat([0.0, 1.0, 2.0, 4.0, 7.0], 5)
    cubic = lambda a, b: 1 + a + 0.3 * b**3 - b  # noqa: E731
    spline = SplineAlongX2().fit(t, h, cubic(t, h))
    np.testing.assert_allclose(spline.predict(t[:5], 3.0), cubic(t[:5], 3.0), rtol=1e-9)
    assert not np.allclose(LinearAlongX2().fit(t, h, cubic(t, h)).predict(t[:5], 3.0), cubic(t[:5], 3.0), rtol=1e-3)
    assert model.predict(np.array([[30.0, 40.0]]), np.array([[2.5e4, 1e6]])).shape == (1, 2)


@pytest.mark.parametrize("cls", SKLEARN, ids=lambda c: c.name)
def test_sklearn_baselines_fit_predict_and_interpolate(cls, small) -> None:
    x1, x2, y = small
    model = cls().fit(x1, x2, y)
    T, H = np.meshgrid(np.linspace(10.0, 80.0, 7), np.linspace(100.0, 5e4, 5))
    pred = model.predict(T, H)
    assert pred.shape == (5, 7) and np.isfinite(pred).all()
    assert model.predict(30.0, 2e4).shape == ()
    scale = np.ptp(y)
    fitted = model.predict(x1, x2)
    assert np.sqrt(np.mean((fitted - y) ** 2)) < 0.05 * scale  # fits its own data (units restored)
    loo = leave_one_x2_out_rmse(cls, x1, x2, y, held_out=np.array([1e4, 3e4]))
    const = np.array([np.sqrt(np.mean((y[x2 == k] - y[x2 != k].mean()) ** 2)) for k in (1e4, 3e4)])
    assert all(np.isfinite(v) for v in loo.values())
    assert np.mean(list(loo.values())) < 0.5 * const.mean()
    with pytest.raises(RuntimeError, match="not fitted"):
        cls().predict(1.0, 1.0)
    with pytest.raises(ValueError, match="x1 has a non-finite value at position 2"):
        cls().fit(np.array([1.0, 2.0, np.nan]), np.ones(3), np.ones(3))


def test_kernel_ridge_chooses_by_held_out_curves(small) -> None:
    x1, x2, y = small
    model = KernelRidgeBaseline().fit(x1, x2, y)
    assert model.params["gamma"] in KernelRidgeBaseline.gammas and model.params["alpha"] in KernelRidgeBaseline.alphas
    assert np.isfinite(model.params["cv_rmse_standardised"])
