"""The low-field equation of state: |ΔS_M| near T_C from the lowest fields, where ∂M/∂T is a spike narrower
than the measured temperature step (mat_interp_core.lowfield)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mat_interp_core import entropy, lowfield, synthetic, uncertainty


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
    ((0.1, 1, 1.5, 2, 3), (0.1, 1.0)),  # a wide gap: only the mean-field form can answer (nothing inside)
    ((0, 1, 2, 3, 4, 5), (0.0, 1.0)),
    ((0.5, 1, 1.5, 2), (0.5, 1.0)),  # even 0.5 T steps: the mean-field form from 0.5 T
    ((1, 2, 3), None),  # no field at or below 0.5 T
    ((0.01, 0.1), None),
])
def test_which_layouts_have_a_low_field_part(fields, applies):
    assert lowfield.fields_apply(fields) == applies


@pytest.mark.parametrize("fields, eta, noise", [
    ((0.0, 1, 2, 3, 4, 5), 0.3, 0.002),  # 1 T steps from 0 T: nothing measured inside the first tesla
    ((0.1, 1, 1.5, 2, 3), 0.0, 0.0),  # a wide gap above 0.1 T
    ((0.5, 1, 1.5, 2, 3), 0.5, 0.002),  # even 0.5 T steps
])
def test_the_mean_field_form_answers_across_a_gap_no_field_tests(fields, eta, noise):
    magnet = synthetic.BeanRodbellMagnet(J=2.0, T0=40.0, eta=eta)
    low = lowfield.fit(*_readings(magnet, fields, np.arange(20.3, 70.0, 1.0), noise))
    assert low is not None and low.mean_field and (low.h0, low.top) == (fields[0], 1.0)
    t = np.linspace(35.0, 45.0, 4001)
    ours, exact = low.delta_s(t, 1.0), np.abs(magnet.exact_delta_s(t, 1.0 - fields[0], fields[0]))
    assert ours.max() == pytest.approx(exact.max(), rel=0.015)
    assert abs(t[ours.argmax()] - t[exact.argmax()]) < 0.1


class _ArrottNoakes:
    """H = M (τ + (M/M1)^(1/β))^γ, τ = (T − T_C)/T1 (tesla, A·m²/kg): critical exponents other than mean field's."""

    def __init__(self, beta, gamma, t_c=100.0, t1=160.0, m1=140.0):
        self.beta, self.gamma, self.t_c, self.t1, self.m1 = beta, gamma, t_c, t1, m1

    def _base(self, t, m):
        return np.maximum((t - self.t_c) / self.t1 + (m / self.m1) ** (1 / self.beta), 0.0)

    def m(self, t, h):
        if h <= 0:
            return self.m1 * np.maximum((self.t_c - t) / self.t1, 0.0) ** self.beta
        lo, hi = np.zeros_like(t), np.full_like(t, 3 * self.m1)
        for _ in range(80):
            mid = (lo + hi) / 2
            above = mid * self._base(t, mid) ** self.gamma > h
            lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
        return (lo + hi) / 2

    def delta_s(self, t, h0, h1):
        """|ΔS|(T; h0 → h1) = ∫ (∂H/∂T)_M dM between M(T, h0) and M(T, h1)."""
        out = []
        for tt in t:
            ms = np.linspace(self.m(np.array([tt]), h0)[0], self.m(np.array([tt]), h1)[0], 4001)
            dh_dt = ms * self.gamma * self._base(tt, ms) ** (self.gamma - 1) / self.t1
            out.append(np.trapezoid(dh_dt, ms))
        return np.array(out)

    def readings(self, fields, temperatures):
        t = np.tile(temperatures, len(fields))
        h = np.repeat(np.asarray(fields, float), temperatures.size)
        return t, h, np.concatenate([self.m(temperatures, f) for f in fields])


def test_critical_exponents_other_than_mean_fields_are_not_taken_for_mean_field():
    """A 3D Heisenberg magnet in 1 T steps from 0 T: the mean-field form misses its readings, and nothing else
    answers across the gap. A 3D Ising one in decades: the windowed polynomial answers instead, within 1.5 %."""
    temperatures = np.arange(60.3, 160.0, 1.0)
    heisenberg = _ArrottNoakes(beta=0.365, gamma=1.386)
    assert lowfield.fit(*heisenberg.readings((0.0, 1, 2, 3), temperatures)) is None
    ising = _ArrottNoakes(beta=0.326, gamma=1.237)
    fields = (0.01, 0.1, 0.5, 1, 2, 3)
    low = lowfield.fit(*ising.readings(fields, temperatures))
    assert low is not None and not low.mean_field
    t = np.linspace(low.t_c - low.half / 2, low.t_c + low.half / 2, 201)
    assert low.delta_s(t, 0.5).max() == pytest.approx(ising.delta_s(t, 0.01, 0.5).max(), rel=0.015)


def test_a_first_order_transition_is_left_alone():
    """η > 1: M(T, H) jumps, the equation of state is not single-valued, and no correction is made."""
    magnet = synthetic.BeanRodbellMagnet(J=3.5, T0=40.0, eta=1.5)
    fields = (0.0, 0.01, 0.1, 0.5, 1, 2, 3)
    assert lowfield.fit(*_readings(magnet, fields, np.arange(20.0, 80.0, 0.5))) is None


def test_too_few_temperatures_around_the_transition_are_left_alone():
    magnet = synthetic.BeanRodbellMagnet(J=2.0, T0=40.0, eta=0.3)
    fields = (0.0, 0.01, 0.1, 0.5, 1, 2, 3)
    assert lowfield.fit(*_readings(magnet, fields, np.arange(38.0, 41.0, 1.0))) is None


def test_across_a_low_gap_the_band_near_t_c_is_the_equation_of_states_own():
    """1 T steps from 0 T: no fold tests inside the first tesla. Where the equation of state answers, the band of
    that gap gives way to LOW_FIELD_BAND of its |ΔS_M|; far from T_C the folds' band is as it was."""
    magnet = synthetic.BeanRodbellMagnet(J=2.0, T0=40.0, eta=0.3)
    fields = np.array((0.0, 1.0, 2.0, 3.0))
    low = lowfield.fit(*_readings(magnet, fields, np.arange(20.3, 70.0, 1.0)))
    t = np.arange(20.0, 70.0, 0.5)
    cal = uncertainty.Calibration(fields, fields * 1e4, t, np.ones((3, t.size)), fields, ("linear", 1.0))
    curves = pd.DataFrame({"T_K": np.tile(t, 2), "dH_T": np.repeat([1.0, 2.0], t.size)})
    assert uncertainty.gap_warning(cal).startswith("no fold tests inside the gap from 0 to 1 T above zero field;")
    bridged = uncertainty.with_low_field(cal, low, curves)
    before, after = (uncertainty.band(c, [1.0]).set_index("T_K")["dS_band"] for c in (cal, bridged))
    at_t_c = t[np.argmin(np.abs(t - low.t_c))]
    own = low.delta_s(np.array([at_t_c]), 1.0)[0]
    assert after[at_t_c] == pytest.approx(uncertainty.LOW_FIELD_BAND * own, rel=1e-6)
    assert after[20.0] == before[20.0] and after[69.5] == before[69.5]
    assert "equation of state fitted to the readings answers across it" in uncertainty.gap_warning(bridged)


def test_without_a_low_gap_the_band_near_t_c_and_suggest_follow_the_equation_of_state():
    """Decades from 0.01 T: the equation of state answers near T_C up to 0.5 T, so the folds of the gaps below
    0.5 T (which test the networks there) give way to its own error in the band, and `suggest` does not rank a
    field inside them for the band the networks' folds had there (session 28)."""
    magnet = synthetic.BeanRodbellMagnet(J=2.0, T0=40.0, eta=0.3)
    fields = np.array((0.01, 0.1, 0.5, 1.0, 2.0, 3.0))
    low = lowfield.fit(*_readings(magnet, fields, np.arange(20.3, 70.0, 1.0)))
    assert low is not None and low.top == 0.5
    t = np.arange(20.0, 70.0, 0.5)
    errors = np.repeat(np.array([[3.0], [2.0], [1.0], [1.0], [1.0]]), t.size, axis=1)  # largest at low field
    cal = uncertainty.Calibration(fields, fields * 1e4, t, errors, fields, ("linear", 1.0))
    assert not uncertainty.low_gap(fields)
    curves = pd.DataFrame({"T_K": np.tile(t, 2), "dH_T": np.repeat([1.0, 2.0], t.size)})
    at_t_c = t[np.argmin(np.abs(t - low.t_c))]
    first = uncertainty.suggestions(cal, [1.0], [at_t_c]).iloc[0]
    assert (first["gap_from"], first["gap_to"]) == (100.0, 1000.0)  # the networks' folds: the lowest gaps first
    bridged = uncertainty.with_low_field(cal, low, curves)
    before, after = (uncertainty.band(c, [1.0]).set_index("T_K")["dS_band"] for c in (cal, bridged))
    own = low.delta_s(np.array([at_t_c]), 0.5)[0]
    phi = uncertainty._fractions(cal, 1.0)  # 0.5 to 1 T whole, 1 to 2 T by 0.01
    assert after[at_t_c] == pytest.approx(phi[2] * 1.0 + phi[3] * 1.0 + uncertainty.LOW_FIELD_BAND * own, rel=1e-6)
    assert after[20.0] == before[20.0] and after[69.5] == before[69.5]  # far from T_C the networks answer
    first = uncertainty.suggestions(bridged, [1.0], [at_t_c]).iloc[0]
    assert (first["gap_from"], first["gap_to"]) == (5000.0, 10000.0)  # the networks' first gap above the top
