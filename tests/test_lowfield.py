"""The low-field equation of state: |ΔS_M| near T_C from the lowest fields, where ∂M/∂T is a spike narrower
than the measured temperature step (mat_interp_core.lowfield)."""

from __future__ import annotations

import numpy as np
import pytest

from mat_interp_core import entropy, lowfield, synthetic


def _readings(magnet, fields, temperatures, noise=0.0, seed=0):
    """Readings of `magnet` (T in K, fields in T, M in A·m²/kg) with relative Gaussian noise."""
    table = synthetic.truth_frame(magnet, temperatures, fields)
    m = table["M_Am2_per_kg"].to_numpy()
    m = m * (1 + noise * np.random.default_rng(seed).standard_normal(m.size))
    return table["T_K"].to_numpy(), table["mu0H_T"].to_numpy(), m


@pytest.mark.parametrize("fields, eta, noise", [
    ((0.0, 0.01, 0.1, 0.5, 1, 2, 3), 0.3, 0.0),  # decades from 0 T
    ((0.004, 0.2, 0.5, 1, 2, 3), 0.5, 0.003),  # a remanent first field, noisy
    ((0.01, 0.1, 0.5, 1, 2, 3), 0.0, 0.002),  # decades from 0.01 T, second order in mean field
])
def test_low_field_peak_matches_the_exact_magnet_between_coarse_temperatures(fields, eta, noise):
    magnet = synthetic.BeanRodbellMagnet(J=2.0, T0=40.0, eta=eta)
    temperatures = np.arange(20.3, 70.0, 1.0)  # 1 K steps, none at T_C
    low = lowfield.fit(*_readings(magnet, fields, temperatures, noise))
    assert low is not None and low.h0 == fields[0] and low.top == 0.5
    t = np.linspace(35.0, 45.0, 4001)
    ours = low.delta_s(t, 0.5)
    exact = np.abs(magnet.exact_delta_s(t, 0.5 - fields[0], fields[0]))
    assert ours.max() == pytest.approx(exact.max(), rel=0.015)
    assert abs(t[ours.argmax()] - t[exact.argmax()]) < 0.1
    # what anything linear in T between the measured temperatures gets from the exact readings: further off
    coarse = entropy.delta_s(synthetic.truth_frame(magnet, temperatures, [f for f in fields if f <= 0.5]),
                             t_col="T_K", h_col="mu0H_T", m_col="M_Am2_per_kg", m_unit="A m2/kg", h_unit="T",
                             dh_tesla=[0.5 - fields[0]])
    assert abs(ours.max() / exact.max() - 1) < abs(coarse["dS_J_per_kgK"].max() / exact.max() - 1)


@pytest.mark.parametrize("fields, applies", [
    ((0.01, 0.1, 0.5, 1, 2, 3, 4, 5), (0.01, 0.5)),
    ((0.0, 0.01, 0.1, 0.5, 1, 2), (0.0, 0.5)),
    ((0.003, 0.2, 0.5, 1, 2), (0.003, 0.5)),
    ((0.1, 1, 1.5, 2, 3), None),  # a wide gap: nothing measured between the first field and the top
    ((0, 1, 2, 3, 4, 5), None),
    ((0.5, 1, 1.5, 2), None),
    ((0.01, 0.1), None),
])
def test_which_layouts_have_a_low_field_part(fields, applies):
    assert lowfield.fields_apply(fields) == applies


def test_a_first_order_transition_is_left_alone():
    """η > 1: M(T, H) jumps, the equation of state is not single-valued, and no correction is made."""
    magnet = synthetic.BeanRodbellMagnet(J=3.5, T0=40.0, eta=1.5)
    fields = (0.0, 0.01, 0.1, 0.5, 1, 2, 3)
    assert lowfield.fit(*_readings(magnet, fields, np.arange(20.0, 80.0, 0.5))) is None


def test_too_few_temperatures_around_the_transition_are_left_alone():
    magnet = synthetic.BeanRodbellMagnet(J=2.0, T0=40.0, eta=0.3)
    fields = (0.0, 0.01, 0.1, 0.5, 1, 2, 3)
    assert lowfield.fit(*_readings(magnet, fields, np.arange(38.0, 41.0, 1.0))) is None
