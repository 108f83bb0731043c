"""Synthetic magnets: physical limits and internal consistency of the exact truth."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from mat_interp_core.synthetic import (
    DEMO_MASS_MG,
    K_B,
    BeanRodbellMagnet,
    MeanFieldMagnet,
    demo_csv_bytes,
    demo_frame,
    truth_frame,
)

MAGNETS = [MeanFieldMagnet(), BeanRodbellMagnet(eta=0.5), BeanRodbellMagnet(eta=2.0)]


@pytest.mark.parametrize("magnet", MAGNETS, ids=repr)
def test_magnetisation_monotone_and_saturates(magnet) -> None:
    T = np.linspace(2.0, 90.0, 177)
    fields = np.array([0.01, 0.1, 1.0, 5.0])
    M = magnet.magnetisation(T[None, :], fields[:, None])  # broadcasting
    assert M.shape == (4, 177)
    assert np.all(np.diff(M, axis=1) <= 1e-9)  # decreases with T
    assert np.all(np.diff(M, axis=0) >= -1e-9)  # increases with H
    assert magnet.magnetisation(0.5, 0.0) == pytest.approx(magnet.Ms, rel=1e-6)
    assert np.all(M <= magnet.Ms)


def test_zero_field_order_parameter() -> None:
    mf = MeanFieldMagnet(Tc=35.0)
    assert mf.magnetisation(35.5, 0.0) == pytest.approx(0.0, abs=1e-9)
    assert mf.magnetisation(34.5, 0.0) > 10.0
    # Negative field flips the moment.
    assert mf.magnetisation(40.0, -1.0) == pytest.approx(-mf.magnetisation(40.0, 1.0))


def test_bean_rodbell_order_of_transition() -> None:
    second = BeanRodbellMagnet(T0=35.0, eta=0.5)
    assert second.Tc == 35.0
    first = BeanRodbellMagnet(T0=35.0, eta=2.0)
    tc = first.Tc
    assert 35.5 < tc < 45.0
    # First order: a finite jump of σ at Tc (lowest-free-energy branch, no hysteresis).
    below = first.reduced_magnetisation(tc - 0.01, 0.0)
    above = first.reduced_magnetisation(tc + 0.01, 0.0)
    assert below > 0.5 and above == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("magnet", MAGNETS, ids=repr)
def test_entropy_limits_and_maxwell(magnet) -> None:
    # T ≫ Tc at zero field: the full N·k_B·ln(2J+1).
    assert magnet.entropy(1e4, 0.0) == pytest.approx(magnet.s_max, rel=1e-6)
    assert magnet.s_max == pytest.approx(magnet.Ms / (magnet.g * magnet.J * 9.2740100783e-24) * K_B * np.log(8))
    assert magnet.entropy(0.5, 0.0) < 1e-6 * magnet.s_max
    # Closed-form entropy obeys the Maxwell relation (∂S/∂B)_T = (∂M/∂T)_B (checked
    # pointwise by finite differences, not by the integral under test in test_entropy).
    for T, H in [(30.0, 0.5), (40.0, 2.0), (60.0, 4.0)]:
        e = 1e-4
        dMdT = (magnet.magnetisation(T + e, H) - magnet.magnetisation(T - e, H)) / (2 * e)
        dSdB = (magnet.entropy(T, H + e) - magnet.entropy(T, H - e)) / (2 * e)
        assert dSdB == pytest.approx(dMdT, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("magnet", MAGNETS[:2], ids=repr)
def test_exact_delta_s_positive_and_peaks_near_tc(magnet) -> None:
    T = np.arange(5.0, 90.0, 0.1)
    for dh in (1.0, 5.0):
        ds = magnet.exact_delta_s(T, dh, 0.01)
        assert np.all(ds > 0)
        assert abs(T[np.argmax(ds)] - magnet.Tc) < 2.0
    assert magnet.exact_delta_s(35.0, 5.0, 0.01) > magnet.exact_delta_s(35.0, 1.0, 0.01)


def test_demo_frame_is_magnetometer_like() -> None:
    df = demo_frame()
    assert list(df.columns) == ["T (K)", "H (Oe)", "moment (emu)"]
    assert sorted(df["H (Oe)"].unique()) == [100.0, 1000.0, 5000.0, 1e4, 2e4, 3e4, 4e4, 5e4]
    assert len(df) == 8 * 100
    t = df.groupby("H (Oe)")["T (K)"]
    assert t.min().max() < 5.1 and t.max().min() > 87.0
    # Scans jitter, so the fields do not share temperatures exactly.
    a = df.loc[df["H (Oe)"] == 100.0, "T (K)"].to_numpy()
    b = df.loc[df["H (Oe)"] == 5e4, "T (K)"].to_numpy()
    assert not np.allclose(a, b, atol=1e-9) and np.allclose(a, b, atol=0.05)
    # moment = M × mass, within the 1e-3 relative noise.
    m = MeanFieldMagnet()
    row = df.iloc[10]
    expected = m.magnetisation(row["T (K)"], row["H (Oe)"] / 1e4) * DEMO_MASS_MG * 1e-3
    assert row["moment (emu)"] == pytest.approx(expected, rel=5e-3)
    # Reproducible, and the CSV helper round-trips.
    pd.testing.assert_frame_equal(df, demo_frame())
    back = pd.read_csv(io.BytesIO(demo_csv_bytes()))
    np.testing.assert_allclose(back.to_numpy(), df.to_numpy(), rtol=1e-12)


def test_truth_frame_long_format() -> None:
    m = MeanFieldMagnet()
    tf = truth_frame(m, [10.0, 20.0, 30.0], [0.1, 1.0])
    assert list(tf.columns) == ["T_K", "mu0H_T", "M_Am2_per_kg"]
    assert len(tf) == 6
    np.testing.assert_allclose(tf["M_Am2_per_kg"], m.magnetisation(tf["T_K"].to_numpy(), tf["mu0H_T"].to_numpy()))


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError):
        MeanFieldMagnet(Tc=-1.0)
    with pytest.raises(ValueError):
        BeanRodbellMagnet(eta=-0.1)
    with pytest.raises(ValueError):
        MeanFieldMagnet().magnetisation(0.0, 1.0)
