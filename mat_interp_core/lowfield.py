"""|ΔS_M| of the lowest fields near T_C from a smooth equation of state, where ∂M/∂T is singular.

From a low first field H0 (0 T, a remanent few mT, or 0.01 T) the field integral ∫ ∂M/∂T dH near T_C is
dominated by the lowest fields, where ∂M/∂T(T, H) is a spike narrower than the measured temperature step
(∝ H^(-2/3) at T_C in mean field). Anything smooth in T fitted to curves measured every 0.25–2 K (the networks,
an interpolation) rounds that spike off, and the peak of |ΔS_M| comes out low and slightly too hot.

The equation of state written the other way round has no such singularity: H/M = g(T, M²) is analytic in T at
fixed M (Landau: g = a'(T − T_C) + b M², the Arrott plot), and by the Maxwell relation with T held and M the
variable,

    ΔS(T; H0 → H1) = ∫ (∂M/∂T)_H dH = −½ ∫_{M(T,H0)²}^{M(T,H1)²} (∂g/∂T)_u du,

the singular part is carried by the limits M(T, H0)², M(T, H1)², which g itself gives (at H0 = 0 the
spontaneous M², zero above T_C: a kink exactly at T_C, not a rounded one). The low-field part of the answer's
|ΔS_M| (from H0 at or below :data:`TOP_T` up to the next field at or above it) is replaced by this integral near
T_C, tapering back to the answer's own outside the window. Above that field the answer is left as it was.

Two forms of g, tried in turn:

- the mean-field form g = F(M²) + T·G(M²) (:func:`_mean_field`): in Weiss's molecular field, with or without a
  magnetovolume coupling, H is linear in T at fixed M. Fitted to readings chosen by M, including the
  paramagnetic ones well above T_C and the spontaneous M at 0 T, it also answers across a gap that no field
  tests (a wide gap from 0.1 T, 1 T steps from 0 T), and from a first field of 0.5 T (there only in place of the
  networks' answer: the Arrott interpolation's keeps its readings, ``simulate``). It is refused where it misses the
  readings (:data:`MF_MAX_MISFIT`), as it does for critical exponents other than mean field's;
- else, where a field lies between H0 and the top, a polynomial cubic in T and quadratic in M² fitted to the
  readings at the lowest fields within a window around T_C (:data:`MAX_MISFIT`).

Either is refused, with the answer left alone, where it is not single-valued (a first-order transition: H(M) not
increasing) or ∂g/∂T is not positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.interpolate import make_smoothing_spline

from mat_interp_core import entropy

__all__ = ["TOP_T", "NOTE", "LowField", "fields_apply", "fit", "fit_readings", "correct"]

TOP_T = 0.5  # tesla: the low-field part runs from H0 (at most this) to the next measured field at or above this
T_ORDER, U_ORDER = 3, 2  # g(T, u) = Σ c_kl τ^k u^l, k ≤ T_ORDER, l ≤ U_ORDER
WINDOW = 0.15  # the fit's half-width around T_C: this fraction of T_C ...
WINDOW_STEPS = 6  # ... or this many measured temperature steps, whichever is wider
MIN_SIDE_STEPS = 3  # measured temperatures needed on each side of T_C
MAX_MISFIT = 0.05  # largest misfit of M at the readings within half the window, RMS over RMS of M
MF_U_ORDER = 3  # the mean-field form's order in u (_mean_field)
MF_U_MARGIN = 1.2  # its readings: M² up to this times the largest near T_C at or below the top
ZERO_FRACTION = 0.05  # its 0 T readings: M above this fraction of the first positive field's largest
MF_MAX_MISFIT = 0.015  # its largest misfit (as MAX_MISFIT): mean-field magnets with 0.5 % noise stay under it
_BISECT = 60
NOTE = f"near T_C up to the lowest field >= {TOP_T:g} T: the low-field equation of state fitted to the readings"


@dataclass
class LowField:
    """A fitted low-field equation of state g(T, u) = H/M, u = M² (tesla, A·m²/kg, K)."""

    coef: np.ndarray  # (T_ORDER + 1, U_ORDER + 1), in the scaled τ, u/u_scale
    t_mid: float
    t_scale: float
    u_scale: float
    t_c: float  # where the lowest measured field's M(T) falls fastest (the window's centre)
    half: float  # the window's half-width, K
    h0: float  # the lowest field, T
    top: float  # the low-field part's upper field, T
    u_max: float  # the root searches' upper bound on M²
    misfit: float  # RMS misfit of M at the readings within half the window, over their RMS

    @property
    def mean_field(self) -> bool:
        """Whether this is the mean-field form (linear in T at fixed M: :func:`_mean_field`)."""
        return self.coef.shape[0] == 2

    def g(self, t, u) -> np.ndarray:
        tau, v = (np.asarray(t, float) - self.t_mid) / self.t_scale, np.asarray(u, float) / self.u_scale
        return sum(self.coef[k, l] * tau ** k * v ** l for k in range(self.coef.shape[0])
                   for l in range(self.coef.shape[1]))

    def g_t_integral(self, t, u0, u1) -> np.ndarray:
        """∫_{u0}^{u1} ∂g/∂T du at each t."""
        tau = (np.asarray(t, float) - self.t_mid) / self.t_scale
        v0, v1 = np.asarray(u0, float) / self.u_scale, np.asarray(u1, float) / self.u_scale
        out = np.zeros(np.broadcast(tau, v0, v1).shape)
        for k in range(1, self.coef.shape[0]):
            for l in range(self.coef.shape[1]):
                out = out + self.coef[k, l] * k * tau ** (k - 1) * (v1 ** (l + 1) - v0 ** (l + 1)) / (l + 1)
        return out * self.u_scale / self.t_scale

    def stable_root(self, t) -> np.ndarray:
        """M² where H = 0 on the stable branch: the spontaneous M² below T_C, 0 above it."""
        t = np.asarray(t, float)
        root = _bisect(np.zeros_like(t), np.full_like(t, self.u_max), lambda u: self.g(t, u) > 0)
        return np.where(self.g(t, np.zeros_like(t)) >= 0, 0.0, root)

    def u_at(self, t, h: float) -> np.ndarray:
        """M² at field h (T) on the stable branch."""
        t = np.asarray(t, float)
        lo = self.stable_root(t)
        if h <= 0:
            return lo
        return _bisect(lo, np.full_like(t, self.u_max), lambda u: np.sqrt(u) * self.g(t, u) > h)

    def delta_s(self, t, h1: float) -> np.ndarray:
        """|ΔS_M|(T; H0 → h1), J/(kg·K), for h1 ≤ top."""
        return 0.5 * np.abs(self.g_t_integral(t, self.u_at(t, self.h0), self.u_at(t, min(h1, self.top))))

    def weight(self, t) -> np.ndarray:
        """1 within a quarter of the window of T_C, falling to 0 at half of it (cosine)."""
        x = 2 * np.abs(np.asarray(t, float) - self.t_c) / self.half
        return np.where(x <= 0.5, 1.0, np.where(x >= 1.0, 0.0, 0.5 + 0.5 * np.cos(np.pi * (x - 0.5) / 0.5)))


def _bisect(lo: np.ndarray, hi: np.ndarray, above) -> np.ndarray:
    """Where the monotone condition `above(u)` turns true between `lo` and `hi`, elementwise."""
    for _ in range(_BISECT):
        mid = (lo + hi) / 2
        pos = above(mid)
        hi, lo = np.where(pos, mid, hi), np.where(pos, lo, mid)
    return (lo + hi) / 2


def fields_apply(fields_tesla) -> tuple[float, float] | None:
    """(H0, top) when the layout has a low-field part this module treats: a first field H0 at or below
    :data:`TOP_T` and a measured field above H0 at or above TOP_T (top: the lowest such); else None."""
    f = np.unique(np.asarray(fields_tesla, dtype=float))
    if f.size < 2 or f[0] > TOP_T + 1e-9:
        return None
    above = f[(f >= TOP_T - 1e-9) & (f > f[0] + 1e-9)]
    return (float(f[0]), float(above[0])) if above.size else None


def fit(t, h_tesla, m) -> LowField | None:
    """The low-field equation of state of M(T) sweeps (T in K, set-point fields in tesla, M in A·m²/kg), or
    None when it does not apply or fit (module docstring): the mean-field form where it follows the readings,
    else the windowed polynomial where a field lies between H0 and the top."""
    t, h, m = (np.asarray(a, dtype=float).ravel() for a in (t, h_tesla, m))
    span = fields_apply(h)
    if span is None:
        return None
    h0, top = span
    f = np.unique(h)
    upper = f[f > top + 1e-9]
    fit_top = float(upper[0]) if upper.size else top
    centre = _centre(t, h, m)
    if centre is None:
        return None
    t_c, half = centre
    model = _mean_field(t, h, m, h0, top, fit_top, t_c, half)
    if model is not None or np.sum((f > 0) & (f <= top + 1e-9)) < 3:
        return model
    rows = (h > 0) & (h <= fit_top + 1e-9) & (m > 0) & (np.abs(t - t_c) <= half)
    return _least_squares(t[rows], h[rows], m[rows], T_ORDER, U_ORDER, t_c, half, h0, top, MAX_MISFIT)


def _centre(t, h, m) -> tuple[float, float] | None:
    """(T_C, half): where the lowest positive field's M(T) falls fastest (a GCV smoothing spline) and the fit's
    half-width around it; None with too few temperatures on either side or a failing spline."""
    first = np.unique(h[h > 0])[0]
    sel = h == first
    order = np.argsort(t[sel])
    t1, m1 = t[sel][order], m[sel][order]
    t1, keep = np.unique(t1, return_index=True)
    m1 = m1[keep]
    if t1.size < 2 * MIN_SIDE_STEPS + 1:
        return None
    try:
        smooth = make_smoothing_spline(t1, m1)
    except (ValueError, np.linalg.LinAlgError):
        return None
    t_c = float(t1[int(np.argmin(smooth.derivative()(t1)))])
    if min(np.sum(t1 < t_c), np.sum(t1 > t_c)) < MIN_SIDE_STEPS:
        return None
    return t_c, max(WINDOW * t_c, WINDOW_STEPS * float(np.median(np.diff(t1))))


def _mean_field(t, h, m, h0, top, fit_top, t_c, half) -> LowField | None:
    """The mean-field form g = F(u) + T·G(u) (Weiss: at fixed M, H is linear in T, whatever J or the
    magnetovolume coupling), F and G of order :data:`MF_U_ORDER` in u. Its rows are chosen by M, not by T:
    every reading up to the field above the top with M² up to :data:`MF_U_MARGIN` times the largest near T_C
    at or below the top, from T_C − half upwards (the paramagnetic readings fix g at small M where a 1 T field
    leaves none near T_C), and at 0 T the spontaneous readings (M above :data:`ZERO_FRACTION` of the first
    field's largest) as g = 0. The window is centred on the model's own T_C (g(T, 0) = 0) when that lies
    within two half-widths below the first field's steepest fall or one above it: a first field of 1 T falls
    fastest well above T_C on a magnet with a low T_C. Refused above :data:`MF_MAX_MISFIT` (critical exponents
    other than mean field's: Arrott–Noakes magnets of the 3D Heisenberg and Ising classes miss by 3–18 %)."""
    low = (h > 0) & (h <= top + 1e-9) & (np.abs(t - t_c) <= half / 2)
    if not np.any(low):
        return None
    u_cut = MF_U_MARGIN * float(np.max(m[low] ** 2))
    rows = (h > 0) & (h <= fit_top + 1e-9) & (m > 0) & (m ** 2 <= u_cut) & (t >= t_c - half)
    first = np.unique(h[h > 0])[0]
    rows |= (h == 0) & (m > ZERO_FRACTION * float(np.max(m[h == first]))) & (np.abs(t - t_c) <= half)
    model = _least_squares(t[rows], h[rows], m[rows], 1, MF_U_ORDER, t_c, half, h0, top, MF_MAX_MISFIT)
    if model is not None and model.coef[1, 0] > 0:
        t_zero = model.t_mid - model.t_scale * model.coef[0, 0] / model.coef[1, 0]
        if t_c - 2 * half <= t_zero <= t_c + half:
            model.t_c = float(t_zero)
    return model


def _least_squares(tr, hr, mr, t_order, u_order, t_c, half, h0, top, max_misfit) -> LowField | None:
    """g(T, u) = Σ c_kl τ^k u^l (k ≤ `t_order`, l ≤ `u_order`) by least squares on the readings (tr, hr, mr),
    or None: too few readings, a failing solve, H(M) not single-valued, or a misfit over `max_misfit`."""
    if tr.size < 3 * (t_order + 1) * (u_order + 1):
        return None
    t_mid, t_scale = float(tr.mean()), float(max(tr.std(), 1e-9))
    u = mr ** 2
    u_scale = float(u.max())
    tau, v = (tr - t_mid) / t_scale, u / u_scale
    design = np.stack([tau ** k * v ** l for k in range(t_order + 1) for l in range(u_order + 1)], axis=1)
    try:
        coef, *_ = np.linalg.lstsq(design, hr / mr, rcond=None)
    except np.linalg.LinAlgError:  # SVD did not converge: no equation of state, the answer stays
        return None
    model = LowField(coef.reshape(t_order + 1, u_order + 1), t_mid, t_scale, u_scale, t_c, half, h0, top,
                     (1.5 * float(mr.max())) ** 2, float("nan"))
    if not _single_valued(model, tr, hr):
        return None
    fitted = np.empty_like(mr)
    for value in np.unique(hr):
        at = hr == value
        fitted[at] = np.sqrt(model.u_at(tr[at], float(value)))
    centre = np.abs(tr - t_c) <= half / 2
    model.misfit = float(np.sqrt(np.mean((fitted - mr)[centre] ** 2) / np.mean(mr[centre] ** 2)))
    return model if model.misfit <= max_misfit else None


def fit_readings(data, units: entropy.MagnetUnits) -> LowField | None:
    """:func:`fit` on a project's readings (`data`: dataset.TrainingData of M(T) sweeps, in `units`)."""
    x, y = data.arrays()
    m = entropy.to_specific_moment(y, units.m_unit, mass_mg=units.mass_mg, molar_mass_g=units.molar_mass_g)
    return fit(x[:, 0], entropy.to_tesla(data.x2_set_point, units.h_unit), m)


def _single_valued(model: LowField, t, h) -> bool:
    """Whether H(M) rises on the stable branch and ∂g/∂T > 0 across the window, up to the fitted fields."""
    grid_t = np.linspace(model.t_c - model.half / 2, model.t_c + model.half / 2, 41)
    lo = model.stable_root(grid_t)
    hi = model.u_at(grid_t, float(np.max(h)) * 1.2)
    frac = np.linspace(0.0, 1.0, 60)[:, None]
    u = lo[None, :] + frac * (hi - lo)[None, :]
    hh = np.sqrt(u) * model.g(grid_t[None, :], u)
    if np.any(np.diff(hh, axis=0) < -1e-12 * max(1.0, float(np.max(np.abs(hh))))):
        return False
    return bool(np.all(model.g_t_integral(grid_t, lo, hi) > 0))


def correct(result: entropy.SimulatedEntropy, model, low: LowField, units: entropy.MagnetUnits) -> None:
    """Replace the low-field part of `result`'s |ΔS_M| near T_C (module docstring) by `low`'s, in place; `model`
    is the predictor `result` was computed from."""
    t_axis = np.unique(result.curves["T_K"].to_numpy())
    factor = float(entropy.to_tesla(1.0, units.h_unit))
    h_axis = np.asarray(result.h_axis, dtype=float)
    h_low = np.union1d(h_axis[h_axis * factor <= low.top + 1e-9], [low.top / factor])
    tt, hh = np.meshgrid(t_axis, h_low)
    dhs = sorted(float(v) for v in result.curves["dH_T"].unique())
    spans = sorted({min(dh, low.top - low.h0) for dh in dhs})
    table = pd.DataFrame({"T": tt.ravel(), "H": hh.ravel(), "M": np.asarray(model.predict(tt, hh), float).ravel()})
    answered = entropy.delta_s(table, t_col="T", h_col="H", m_col="M", dh_tesla=spans, **units.kwargs())
    weight = low.weight(t_axis)
    shift = []
    for span in spans:
        own = answered[np.isclose(answered["dH_T"], span)].sort_values("T_K")["dS_J_per_kgK"].to_numpy()
        shift.append(weight * (low.delta_s(t_axis, low.h0 + span) - own))
    by_span = dict(zip(spans, shift))
    add = pd.concat([pd.DataFrame({"T_K": t_axis, "dH_T": dh, "_add": by_span[min(dh, low.top - low.h0)]})
                     for dh in dhs], ignore_index=True)
    result.curves = _shifted(result.curves, add, ["dS_J_per_kgK", "dS_min", "dS_max"])
    if result.per_member is not None:
        result.per_member = _shifted(result.per_member, add, ["dS_J_per_kgK"])
    result.figures = entropy.result_figures(result.curves, result.per_member)


def _shifted(frame: pd.DataFrame, add: pd.DataFrame, columns) -> pd.DataFrame:
    """`frame` with `add`'s _add (per T_K, dH_T) added to `columns`, kept ≥ 0."""
    keyed = frame.assign(_T=frame["T_K"].round(9), _H=frame["dH_T"].round(9))
    extra = add.assign(_T=add["T_K"].round(9), _H=add["dH_T"].round(9))[["_T", "_H", "_add"]]
    merged = keyed.merge(extra, on=["_T", "_H"], how="left")
    delta = merged["_add"].fillna(0.0).to_numpy()
    for c in columns:
        if c in merged:
            merged[c] = np.maximum(merged[c].to_numpy() + delta, 0.0)
    return merged.drop(columns=["_T", "_H", "_add"])
