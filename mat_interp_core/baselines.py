"""Honest interpolation baselines behind the same fit/predict interface as a network.

A trained network is only worth its cost if it beats what a scientist would
do by hand: interpolate linearly (monotone-cubically, or with a cubic spline)
between the measured curves, or fit a radial-basis-function surface; the
paper's supporting information also weighs scikit-learn's kernel ridge,
random forest and MLP regressors, which are here too. Every baseline here has
``fit(x1, x2, y) -> self``, ``predict(x1, x2) -> ndarray`` (any equal shapes)
and a ``name``, and :func:`leave_one_x2_out_rmse` scores any of them, or a
network wrapper, the same way: hide one measured X2 curve, predict it.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, Protocol

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator, RBFInterpolator, make_smoothing_spline

from . import entropy, setpoints

__all__ = [
    "Interpolator",
    "make",
    "ALONG_X1_ON_ISOTHERMS",
    "LinearAlongX2",
    "PchipAlongX2",
    "RBFBaseline",
    "SplineAlongX2",
    "KernelRidgeBaseline",
    "ForestBaseline",
    "MLPBaseline",
    "BASELINES",
    "LABELS",
    "probe",
    "leave_one_x2_out_rmse",
    "mean_leave_one_x2_out_rmse",
]

_X2_RTOL = 1e-9  # a requested held-out X2 value matches a set point within this fraction of the X2 span
_CHUNK = 1_000_000  # points evaluated at once by the curve baselines
_MAX_TABLE = 20_000_000  # largest (curves × X1 nodes) table before the X1 grid is made uniform
X1_SUBDIVIDE = 8  # along_x1 "pchip": nodes per measured X1 step (see _AlongX2)
_MAX_RESAMPLED = 8_000_000  # ArrottAlongX2: largest table resampled between readings (denser nodes need none)
_SMOOTH_MIN = 5  # along_x1 "smooth": fewest readings a curve needs for its smoothing spline (fewer: linear)
MISS_LIMIT = 4.0  # along_x1 "smooth", capped: no reading missed by more than this many times the curve's scatter
MAD = 0.6745  # median |x| of a standard normal x
CUBIC_GAIN = 1.394  # the standard deviation of a reading's residual from the cubic through 2 + 2 even neighbours, per σ
COARSE_T_STEP_K = 1.1  # ArrottAlongX2: readings further apart along T keep a sharp knee (1 K steps with jitter do not count)
RESAMPLE_SCATTER = 5e-4  # ArrottAlongX2: PCHIP between finer readings only when they scatter less (relative σ)


class Interpolator(Protocol):
    """What every baseline (and a network wrapper) offers."""

    name: str

    def fit(self, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> "Interpolator": ...

    def predict(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------- input checks


def _in_chunks(x1, x2, chunk: int, evaluate) -> np.ndarray:
    """``evaluate(x1, x2)`` on the broadcast, checked inputs, ``chunk`` points at a time, in their shape."""
    shape = np.broadcast_shapes(np.shape(x1), np.shape(x2))
    a, b = _check_xy(np.broadcast_to(x1, shape), np.broadcast_to(x2, shape))
    out = np.empty(a.size)
    for lo in range(0, a.size, chunk):
        sl = slice(lo, lo + chunk)
        out[sl] = evaluate(a[sl], b[sl])
    return out.reshape(shape)


def _check_xy(x1: np.ndarray, x2: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Flattened float arrays of equal size, all finite."""
    arrays = [np.asarray(a, dtype=float) for a in ((x1, x2) if y is None else (x1, x2, y))]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        names = ("x1", "x2", "y")[: len(arrays)]
        raise ValueError(
            "inputs must have equal shapes, got " + ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrays))
        )
    flat = [a.ravel() for a in arrays]
    for name, a in zip(("x1", "x2", "y"), flat):
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"{name} has a non-finite value at position {int(np.flatnonzero(bad)[0])}")
    return tuple(flat)


def _x2_labels(x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X2 set points (ascending) and each point's curve index (`setpoints.group`: read-backs merge)."""
    if x2.size == 0:
        return np.empty(0), np.empty(0, dtype=int)
    groups = setpoints.group(x2)
    return groups.values, groups.labels


# --------------------------------------------------------------------------- curve baselines


class _AlongX2:
    """Curves on one X1 grid, a piecewise polynomial in X2 per grid node, linear in X1.

    The X1 grid is the union of all measured X1 values, so every training point
    is a node and is reproduced exactly, unless smoothed (below; only when curves × nodes would exceed
    20 million values is it replaced by a uniform grid over the same span). A
    curve is held constant beyond its own measured X1 range, and predictions
    outside the measured X2 range are clamped to the end curves: no
    extrapolation in either direction.

    ``along_x1 = "pchip"`` (:func:`make` sets it for isotherms): each curve is
    resampled by monotone cubic (PCHIP) interpolation along X1 onto a grid
    :data:`X1_SUBDIVIDE` times finer than the measured X1 values, so the
    linear steps between nodes follow the curve. Isotherms' X1 is the field,
    and linear steps of 0.2 T across M(H)'s low-field rise near T_C put
    |ΔS_M| off by several per cent on the family's isotherm cases; along the
    temperature of M(T) sweeps, dense and noisy, PCHIP made the family's
    worst cases worse (README, bench/family.py --t-order).

    ``along_x1 = "smooth"`` (the Arrott interpolation's): each curve at the nodes is a cubic smoothing spline
    of its readings along X1, its smoothness chosen by generalised cross-validation
    (``scipy.interpolate.make_smoothing_spline``), so the readings' noise is not passed on node by node;
    noise-free readings are followed almost exactly (README, fidelity: session 25).
    """

    name = "along-x2"
    along_x1 = "linear"
    capped = False  # along_x1 "smooth": no reading missed by more than its curve's scatter allows (smoothed_curve)

    def __init__(self) -> None:
        self.x1_nodes: np.ndarray | None = None
        self.x2_values: np.ndarray | None = None
        self._breaks: np.ndarray | None = None
        self._coef: np.ndarray | None = None  # (degree+1, n_x2 - 1, n_x1)

    def fit(self, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> "_AlongX2":
        x1, x2, y = _check_xy(x1, x2, y)
        if x1.size == 0:
            raise ValueError("no training points")
        x2_values, labels = _x2_labels(x2)
        nodes = np.unique(x1)
        if self.along_x1 == "pchip" and nodes.size > 1:
            nodes = _subdivided(nodes, x2_values.size)
        if nodes.size * x2_values.size > _MAX_TABLE:
            nodes = np.linspace(nodes[0], nodes[-1], max(2, _MAX_TABLE // x2_values.size))
        table = np.empty((x2_values.size, nodes.size))
        for k in range(x2_values.size):
            sel = labels == k
            xs, inverse = np.unique(x1[sel], return_inverse=True)
            ys = np.bincount(inverse, weights=y[sel]) / np.bincount(inverse)  # repeated X1: mean
            table[k] = np.interp(nodes, xs, ys)
            if self.along_x1 == "pchip" and xs.size >= 3:
                inside = (nodes > xs[0]) & (nodes < xs[-1])
                table[k, inside] = PchipInterpolator(xs, ys)(nodes[inside])
            elif self.along_x1 == "smooth" and xs.size >= _SMOOTH_MIN:
                inside = (nodes >= xs[0]) & (nodes <= xs[-1])
                table[k, inside] = smoothed_curve(xs, ys, self.capped)(nodes[inside])
        self.x1_nodes, self.x2_values = nodes, x2_values
        if x2_values.size == 1:
            self._breaks = x2_values.copy()
            self._coef = table[None, :, :]
        else:
            self._breaks, self._coef = self._pieces(x2_values, table)
        return self

    def _pieces(self, x2_values: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def predict(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        if self._coef is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        return _in_chunks(x1, x2, _CHUNK, self._evaluate)

    def _evaluate(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        nodes, breaks, coef = self.x1_nodes, self._breaks, self._coef
        # X1: linear between neighbouring nodes, constant beyond the ends.
        if nodes.size == 1:
            j = np.zeros(x1.size, dtype=int)
            w = np.zeros(x1.size)
            j1 = j
        else:
            j = np.clip(np.searchsorted(nodes, x1, side="right") - 1, 0, nodes.size - 2)
            w = np.clip((x1 - nodes[j]) / (nodes[j + 1] - nodes[j]), 0.0, 1.0)
            j1 = j + 1
        # X2: the polynomial piece of the interval, clamped to the measured range.
        if breaks.size == 1:
            k = np.zeros(x2.size, dtype=int)
            dx = np.zeros(x2.size)
        else:
            xc = np.clip(x2, breaks[0], breaks[-1])
            k = np.clip(np.searchsorted(breaks, xc, side="right") - 1, 0, breaks.size - 2)
            dx = xc - breaks[k]
        v0 = np.zeros(x1.size)
        v1 = np.zeros(x1.size)
        for c in coef:  # Horner, highest power first
            v0 = v0 * dx + c[k, j]
            v1 = v1 * dx + c[k, j1]
        return (1.0 - w) * v0 + w * v1


class LinearAlongX2(_AlongX2):
    """Linear interpolation between neighbouring X2 curves (the paper's "linear interpolation")."""

    name = "linear"

    def _pieces(self, x2_values: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slope = np.diff(table, axis=0) / np.diff(x2_values)[:, None]
        return x2_values, np.stack([slope, table[:-1]])


class PchipAlongX2(_AlongX2):
    """Monotone cubic (PCHIP) interpolation across X2 curves: no overshoot between curves."""

    name = "pchip"

    def _pieces(self, x2_values: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = PchipInterpolator(x2_values, table, axis=0, extrapolate=False)
        return np.asarray(p.x), np.asarray(p.c)


class PchipCbrtAlongX2(PchipAlongX2):
    """PCHIP across X2 curves in the coordinate cbrt(X2): a magnet's M(H) near T_C rises as H^(1/3) from zero
    field (mean field), which is linear in this coordinate, so a wide gap above the lowest field is bridged by
    the shape the physics gives instead of a straight line in H."""

    name = "pchip-cbrt"

    def fit(self, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> "PchipCbrtAlongX2":
        return super().fit(x1, np.cbrt(np.asarray(x2, dtype=float)), y)

    def predict(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        return super().predict(x1, np.cbrt(np.asarray(x2, dtype=float)))


class ArrottAlongX2(PchipCbrtAlongX2):
    """Each temperature node's M(H) interpolated in Arrott coordinates, H/M against M², then solved for M.

    Near T_C a magnet's Arrott curves are nearly straight (Landau: H = aM + bM³ + cM⁵), so monotone cubic
    interpolation there follows M(H) across a wide field gap, and below the lowest field the curve's
    tangent gives M → 0 above T_C (intercept a > 0) or the spontaneous M below it (a < 0), where M ∝ H^(1/3) at
    T_C. A measured zero-field curve enters as the point (M², 0) where the tangent says ferromagnetic (a < 0),
    so M(0) ≈ 0 there gives the critical H ∝ M³, continuously in a and M(0). Each node is tabulated on a fine field grid
    (linear in H^(1/3) between its points); where the Arrott points are not ordered (noise on a saturated
    curve) or H(M) would not rise, the node falls back to PCHIP in H^(1/3). X2 must be a field (≥ 0) and
    Y a magnetisation (> 0 in a field).

    Each node solves its own Arrott plot, so noise on the readings made neighbouring nodes disagree (some
    falling back), and ∂M/∂T across them spiked: on the family's wide-gap magnets with noise the |ΔS_M| peak
    came out tens of per cent high (README). The curves are therefore smoothed along X1 first (``along_x1 =
    "smooth"``).

    From a first field of at least ``entropy.ZERO_FIELD_T`` (`h_unit`, the field's unit, given), on readings more
    than :data:`COARSE_T_STEP_K` apart, the smoothing is capped at the readings' own scatter (``capped``,
    :func:`smoothed_curve`), and the table solved at the measured temperatures is resampled along X1 by PCHIP,
    :data:`X1_SUBDIVIDE` nodes per step (``resampled``). In absolute terms GCV smoothed away the low-field
    curve's knee above T_C, where M is small but H/M is what the Arrott plot uses, and straight steps between
    readings kept ∂M/∂T constant across each step: the |ΔS_M| peak came out up to 14 % low on the family's
    inhomogeneous magnets in 2 K steps (README, fidelity, session 35). Finer readings from such a field are
    resampled too when they barely scatter (:func:`relative_scatter` below :data:`RESAMPLE_SCATTER`): there
    straight steps made |ΔS_M| a staircase, its peak low and its temperature at a step's edge; on noisy readings
    PCHIP carried single noisy readings into spikes of ∂M/∂T, and the steps' averaging is kept (session 37). A
    zero-field curve's cusp and a remanent first field keep the absolute smoothing and straight steps."""

    name = "arrott"
    along_x1 = "smooth"
    _SAMPLES = 64  # M samples per Arrott segment
    _GRID = 256  # fine field grid points (uniform in H^(1/3)), plus the measured fields

    def __init__(self, h_unit: str | None = None, resample: bool | None = None) -> None:
        super().__init__()
        self.h_unit = h_unit
        self.resample = resample  # finer readings: PCHIP between them (None: when they barely scatter)
        self.resampled = False  # PCHIP between readings (set by fit)

    def fit(self, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> "ArrottAlongX2":
        x2 = np.asarray(x2, dtype=float)
        above_zero = (self.h_unit is not None and x2.size > 0
                      and float(entropy.to_tesla(np.min(x2), self.h_unit)) >= entropy.ZERO_FIELD_T)
        self.capped = above_zero and entropy.measured_t_step(x1, x2) > COARSE_T_STEP_K
        self.resampled = self.capped or (above_zero and (relative_scatter(x1, x2, y) < RESAMPLE_SCATTER
                                                         if self.resample is None else self.resample))
        super().fit(x1, x2, y)
        fields = np.asarray(self.x2_values) ** 3  # the set points back in H
        if fields.size < 3 or fields[0] < 0:
            return self
        u = np.union1d(np.linspace(np.cbrt(fields[0]), np.cbrt(fields[-1]), self._GRID), np.cbrt(fields))
        table = super().predict(np.repeat(self.x1_nodes, u.size), np.tile(u ** 3, self.x1_nodes.size))
        table = table.reshape(self.x1_nodes.size, u.size)  # PCHIP in H^(1/3): the fallback
        measured = self._measured(fields)
        for n in range(self.x1_nodes.size):
            m = self._solve(fields, measured[:, n], u ** 3)
            if m is not None:
                table[n] = m
        nodes = self.x1_nodes
        fine = _subdivided(nodes, u.size, _MAX_RESAMPLED)
        if self.resampled and nodes.size > 2 and fine.size > nodes.size:
            table = PchipInterpolator(nodes, table, axis=0)(fine)
            self.x1_nodes = fine
        slope = np.diff(table, axis=1).T / np.diff(u)[:, None]
        self._breaks, self._coef = u, np.stack([slope, table[:, :-1].T])
        return self

    def fixed(self) -> "ArrottAlongX2":
        """An unfitted copy that treats finer readings as this fit did (PCHIP between them or not): the folds
        (``choice.baseline_folds``) then answer by the same method, and the temperature fold's Richardson
        estimate compares one method at two steps (every other reading scatters more about its cubic)."""
        return ArrottAlongX2(self.h_unit, self.resampled)

    def _measured(self, fields: np.ndarray) -> np.ndarray:
        """M of every field curve at every X1 node (the curves' own values, before any interpolation)."""
        x1 = np.repeat(self.x1_nodes[None, :], fields.size, axis=0)
        h = np.repeat(fields[:, None], self.x1_nodes.size, axis=1)
        return super().predict(x1.ravel(), h.ravel()).reshape(fields.size, self.x1_nodes.size)

    def _solve(self, h: np.ndarray, m: np.ndarray, h_out: np.ndarray) -> np.ndarray | None:
        """M at the fields h_out from one node's measured (h, m), or None to fall back."""
        zero = h <= 0
        if np.any(m[~zero] <= 0) or (~zero).sum() < 2:
            return None
        xs, ys = m[~zero] ** 2, h[~zero] / m[~zero]
        if np.any(np.diff(xs) <= 0):
            return None
        slope = _pchip_slopes(xs, ys)[0]
        intercept = ys[0] - slope * xs[0]  # the Arrott curve's tangent at the lowest field, at M = 0
        if zero.any() and intercept < 0:  # ferromagnetic side, zero field measured: through (M0², 0), M0 ≥ 0
            xs, ys = np.concatenate([[max(m[zero][0], 0.0) ** 2], xs]), np.concatenate([[0.0], ys])
            if np.any(np.diff(xs) <= 0):
                return None
        if xs.size < 3:
            return None
        d = _pchip_slopes(xs, ys)
        parts_x, parts_y = [], []
        if ys[0] > 0:  # below the lowest field, the tangent line down to H = 0 (M → 0 when it meets M = 0)
            if slope <= 0:
                return None
            x_lo = 0.0 if intercept >= 0 else -intercept / slope
            parts_x.append(x_lo + (xs[0] - x_lo) * _T)
            parts_y.append(ys[0] + slope * (parts_x[0] - xs[0]))
        w = np.diff(xs)[:, None]  # cubic Hermite pieces of the monotone interpolant, _T along each
        parts_x.append((xs[:-1, None] + w * _T).ravel())
        parts_y.append((ys[:-1, None] * _H00 + w * d[:-1, None] * _H10 + ys[1:, None] * _H01
                        + w * d[1:, None] * _H11).ravel())
        x = np.concatenate(parts_x + [xs[-1:]])
        mm = np.sqrt(x)
        hh = mm * np.concatenate(parts_y + [ys[-1:]])
        if np.any(np.diff(hh) <= 0):
            return None
        return np.interp(h_out, hh, mm)


_T = np.linspace(0.0, 1.0, ArrottAlongX2._SAMPLES, endpoint=False)  # samples along each Arrott segment
_H00, _H10, _H01, _H11 = 2 * _T**3 - 3 * _T**2 + 1, _T**3 - 2 * _T**2 + _T, -2 * _T**3 + 3 * _T**2, _T**3 - _T**2


def cubic_residuals(t: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each inner reading's residual from the cubic through its two neighbours on either side, the reading) for
    one curve `m`(`t`), `t` ascending with at least 5 readings. On a smooth curve the cubic's own error is of
    fourth order in the step, so the residuals are the measurement noise (times :data:`CUBIC_GAIN`). Two
    readings at one `t` give a non-finite residual."""
    around = np.array([-2, -1, 1, 2])
    centre = np.arange(2, t.size - 2)
    nodes = t[centre[:, None] + around]  # (n, 4)
    weights = np.ones_like(nodes)  # Lagrange weights of the 4 neighbours at the centre
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(4):
            for b in range(4):
                if a != b:
                    weights[:, a] *= (t[centre] - nodes[:, b]) / (nodes[:, a] - nodes[:, b])
    return m[centre] - np.sum(weights * m[centre[:, None] + around], axis=1), m[centre]


def relative(difference: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`difference` relative to `reference`; a reference of ~0 (zero field above T_C) gives inf, not a warning
    (:func:`relative_scatter` drops it as not finite; a median is robust to it)."""
    with np.errstate(over="ignore"):
        return difference / np.maximum(np.abs(reference), np.finfo(float).tiny)


def relative_scatter(x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> float:
    """The readings' noise as a robust relative standard deviation: each reading's residual from the cubic through
    its two neighbours on either side along X1 (same X2 set point), relative to the reading; the median of its
    size, scaled to a noise σ (on smooth curves the cubic's own error is of fourth order in the step). NaN when no
    curve has 5 readings."""
    x1, x2, y = (np.asarray(a, dtype=float) for a in (x1, x2, y))
    residuals = []
    for value in np.unique(x2):
        sel = x2 == value
        order = np.argsort(x1[sel])
        t, m = x1[sel][order], y[sel][order]
        if t.size >= 5:
            residuals.append(relative(*cubic_residuals(t, m)))
    residuals = np.concatenate(residuals) if residuals else np.array([])
    residuals = residuals[np.isfinite(residuals)]  # two readings at one X1 (both sweep branches) give no cubic
    return float(np.median(np.abs(residuals))) / (MAD * CUBIC_GAIN) if residuals.size else float("nan")


def _subdivided(nodes: np.ndarray, curves: int, limit: int = _MAX_TABLE) -> np.ndarray:
    """The X1 nodes with each step cut into :data:`X1_SUBDIVIDE` equal parts, fewer where the table of `curves`
    curves would outgrow `limit` entries."""
    sub = min(X1_SUBDIVIDE, max(1, limit // (curves * nodes.size)))
    return np.append((nodes[:-1, None] + np.diff(nodes)[:, None] * (np.arange(sub) / sub)).ravel(), nodes[-1])


def smoothed_curve(xs: np.ndarray, ys: np.ndarray, capped: bool = False):
    """A cubic smoothing spline of one curve's readings (`xs` ascending, unique), its smoothness chosen by
    generalised cross-validation (``make_smoothing_spline``).

    `capped`: GCV weighs misses in absolute terms, and on a sharp knee measured in a few coarse steps it smooths
    away the small readings above it (the family's inhomogeneous magnets in 2 K steps: the curve tens of per cent
    off them). So where the spline misses a reading by more than :data:`MISS_LIMIT` times the readings' own
    relative scatter (their residuals from the cubic through their neighbours, a robust σ; noise alone exceeds
    4 σ at one reading in 16 000), the smoothing parameter is lowered until it misses none by more. Readings
    under 0.1 % of the curve's largest |Y| do not count."""
    spline = make_smoothing_spline(xs, ys)
    if not capped or xs.size < _SMOOTH_MIN:
        return spline
    floor = 1e-3 * np.abs(ys).max()
    counted = np.abs(ys) > floor
    residuals, readings = cubic_residuals(xs, ys)
    keep = np.isfinite(residuals) & (np.abs(readings) > floor)
    if not keep.any() or not counted.any():
        return spline
    limit = MISS_LIMIT * np.median(np.abs(residuals[keep] / readings[keep])) / (MAD * CUBIC_GAIN)

    def misses(curve) -> bool:
        return bool(np.max(np.abs(curve(xs[counted]) / ys[counted] - 1.0)) > limit)

    if not misses(spline):
        return spline
    lo, hi = 3 * math.log10(xs[-1] - xs[0]) - 16.0, 3 * math.log10(xs[-1] - xs[0]) + 6.0  # log10 λ: λ ~ span³
    for _ in range(20):  # bisection: the spline's misses grow with λ
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if misses(make_smoothing_spline(xs, ys, lam=10.0 ** mid)) else (mid, hi)
    return make_smoothing_spline(xs, ys, lam=10.0 ** lo)


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The derivatives at the points of the monotone cubic (Fritsch–Carlson, with scipy's PCHIP end rule)."""
    h = np.diff(x)
    delta = np.diff(y) / h
    if x.size == 2:
        return np.array([delta[0], delta[0]])
    d = np.zeros(x.size)
    w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
    same = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d[1:-1] = np.where(same, (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:]), 0.0)

    def end(h0, h1, m0, m1):
        v = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(v) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(v) > abs(3 * m0):
            return 3 * m0
        return v

    d[0], d[-1] = end(h[0], h[1], delta[0], delta[1]), end(h[-1], h[-2], delta[-1], delta[-2])
    return d


class SplineAlongX2(_AlongX2):
    """Cubic spline (not-a-knot) across X2 curves: smooth, may overshoot between far-apart curves."""

    name = "spline"

    def _pieces(self, x2_values: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = CubicSpline(x2_values, table, axis=0, extrapolate=False)
        return np.asarray(p.x), np.asarray(p.c)


# --------------------------------------------------------------------------- RBF


_KERNELS_WITH_EPSILON = ("multiquadric", "gaussian")
_DEFAULT_KERNELS = ("thin_plate_spline", "cubic", "quintic", "multiquadric", "gaussian")


class _FixedRBF:
    """RBFInterpolator on standardised X1, X2 and y with fixed hyper-parameters."""

    name = "rbf-fixed"

    def __init__(self, kernel: str, epsilon: float, smoothing: float, neighbors: int | None) -> None:
        self.kernel, self.epsilon, self.smoothing, self.neighbors = kernel, epsilon, smoothing, neighbors
        self._model: RBFInterpolator | None = None

    def fit(self, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> "_FixedRBF":
        x1, x2, y = _check_xy(x1, x2, y)
        x = np.column_stack([x1, x2])
        self._x_mean = x.mean(axis=0)
        std = x.std(axis=0)
        self._x_std = np.where(std > 0, std, 1.0)
        self._y_mean = float(y.mean())
        y_std = float(y.std())
        self._y_std = y_std if y_std > 0 else 1.0
        neighbors = None if self.neighbors is None or self.neighbors >= x1.size else self.neighbors
        self._model = RBFInterpolator(
            (x - self._x_mean) / self._x_std,
            (y - self._y_mean) / self._y_std,
            kernel=self.kernel,
            epsilon=self.epsilon,
            smoothing=self.smoothing,
            neighbors=neighbors,
        )
        return self

    def predict(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("not fitted; call fit() first")
        shape = np.broadcast_shapes(np.shape(x1), np.shape(x2))
        a, b = _check_xy(np.broadcast_to(x1, shape), np.broadcast_to(x2, shape))
        x = (np.column_stack([a, b]) - self._x_mean) / self._x_std
        return (self._model(x) * self._y_std + self._y_mean).reshape(shape)


class RBFBaseline:
    """Radial-basis-function surface with kernel, epsilon and smoothing chosen by cross-validation.

    Inputs are standardised per axis (mean, std) and y likewise, so one grid of
    epsilons and smoothings suits any units. The score of a candidate is the
    mean leave-one-X2-out RMSE over up to `cv_folds` interior curves, on at most
    `cv_max_points` training points (thinned evenly) to stay fast on large
    sets. Above `neighbors_above` points the surface uses the `neighbors`
    nearest centres only. The winner is refit on all data; its settings and
    CV score are in ``self.params``.
    """

    name = "rbf"

    def __init__(
        self,
        *,
        kernels: tuple[str, ...] = _DEFAULT_KERNELS,
        epsilons: tuple[float, ...] = (0.3, 1.0, 3.0),
        smoothings: tuple[float, ...] = (0.0, 1e-6, 1e-4, 1e-2),
        cv_folds: int = 4,
        cv_max_points: int = 1500,
        neighbors: int = 96,
        neighbors_above: int = 2000,
    ) -> None:
        self.kernels, self.epsilons, self.smoothings = tuple(kernels), tuple(epsilons), tuple(smoothings)
        self.cv_folds, self.cv_max_points = cv_folds, cv_max_points
        self.neighbors, self.neighbors_above = neighbors, neighbors_above
        self.params: dict[str, object] = {}
        self._model: _FixedRBF | None = None

    def _candidates(self) -> list[tuple[str, float, float]]:
        out = []
        for kernel in self.kernels:
            eps = self.epsilons if kernel in _KERNELS_WITH_EPSILON else (1.0,)
            out.extend(itertools.product([kernel], eps, self.smoothings))
        return out

    def fit(self, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> "RBFBaseline":
        x1, x2, y = _check_xy(x1, x2, y)
        neighbors = self.neighbors if x1.size > self.neighbors_above else None
        x2_values, labels = _x2_labels(x2)
        cv_x1, cv_x2, cv_y = _thin(x1, x2, y, labels, self.cv_max_points)
        held = _interior_subset(x2_values, self.cv_folds)
        cv_neighbors = self.neighbors if cv_x1.size > self.neighbors_above else None

        best: tuple[float, tuple[str, float, float]] | None = None
        scores: dict[str, float] = {}
        if held.size:
            for cand in self._candidates():
                kernel, eps, smooth = cand
                try:
                    errors = leave_one_x2_out_rmse(
                        lambda: _FixedRBF(kernel, eps, smooth, cv_neighbors),
                        cv_x1, cv_x2, cv_y, held_out=held,
                    )
                    score = float(np.mean(list(errors.values())))
                except (np.linalg.LinAlgError, ValueError):
                    score = math.inf
                if not np.isfinite(score):
                    score = math.inf
                scores[f"{kernel}/eps={eps:g}/smoothing={smooth:g}"] = score
                if best is None or score < best[0]:
                    best = (score, cand)
        if best is None or not np.isfinite(best[0]):
            best = (math.nan, ("thin_plate_spline", 1.0, 0.0))  # too few curves to cross-validate
        # The best-scoring settings whose full surface can be evaluated between the curves: with `neighbors`, a
        # query's nearest centres may all lie on one curve (a line), where a kernel with a polynomial part is
        # singular; the gaussian (no polynomial part) always can.
        ranked = [best[1]] + sorted((c for c in self._candidates() if c != best[1]),
                                    key=lambda c: scores.get(f"{c[0]}/eps={c[1]:g}/smoothing={c[2]:g}", math.inf))
        for kernel, eps, smooth in ranked + [("gaussian", 1.0, 1e-4)]:
            try:
                self._model = _FixedRBF(kernel, eps, smooth, neighbors).fit(x1, x2, y)
                probe(self._model, x1, x2)
                break
            except np.linalg.LinAlgError:
                continue
        if (kernel, eps, smooth) != best[1]:
            best = (scores.get(f"{kernel}/eps={eps:g}/smoothing={smooth:g}", math.nan), (kernel, eps, smooth))
        self.params = {
            "kernel": kernel,
            "epsilon": eps,
            "smoothing": smooth,
            "neighbors": neighbors,
            "cv_rmse": best[0],
            "cv_held_out_x2": held.tolist(),
            "cv_points": int(cv_x1.size),
            "cv_scores": scores,
        }
        return self

    def predict(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("RBFBaseline is not fitted; call fit() first")
        return self._model.predict(x1, x2)

    def fixed(self) -> "_FixedRBF":
        """An unfitted surface with the settings this fit chose (held-out refits without a new search)."""
        if self._model is None:
            raise RuntimeError("RBFBaseline is not fitted; call fit() first")
        return _FixedRBF(self._model.kernel, self._model.epsilon, self._model.smoothing, self._model.neighbors)


# --------------------------------------------------------------------------- scikit-learn regressors


class _Standardised:
    """A scikit-learn regressor on standardised (X1, X2) and y, fitted on at most `max_points` (thinned evenly)."""

    name = "sklearn"
    max_points = 20_000

    def __init__(self) -> None:
        self._model = None
        self.params: dict[str, object] = {}

    def _estimator(self, x: np.ndarray, y: np.ndarray, x2: np.ndarray):
        """A fitted estimator for standardised inputs x (n, 2) and target y; x2 (raw) names the curves."""
        raise NotImplementedError

    def fit(self, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> "_Standardised":
        x1, x2, y = _check_xy(x1, x2, y)
        if x1.size == 0:
            raise ValueError("no training points")
        x1, x2, y = _thin(x1, x2, y, _x2_labels(x2)[1], self.max_points)
        x = np.column_stack([x1, x2])
        self._x_mean = x.mean(axis=0)
        std = x.std(axis=0)
        self._x_std = np.where(std > 0, std, 1.0)
        self._y_mean = float(y.mean())
        self._y_std = float(y.std()) or 1.0
        with _one_blas_thread():
            self._model = self._estimator((x - self._x_mean) / self._x_std, (y - self._y_mean) / self._y_std, x2)
        return self

    def predict(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        def standardised(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return self._model.predict((np.column_stack([a, b]) - self._x_mean) / self._x_std)

        with _one_blas_thread():
            out = _in_chunks(x1, x2, _SKLEARN_CHUNK, standardised)
        return out * self._y_std + self._y_mean


_SKLEARN_CHUNK = 20_000  # points predicted at once (bounds kernel ridge's kernel block to 20 000 × 1 500)


def _one_blas_thread():
    """BLAS limited to one thread: the small matrices here run 7x slower (CPU time) with threads contending."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


class KernelRidgeBaseline(_Standardised):
    """Kernel ridge regression, RBF kernel; gamma and alpha by leave-one-X2-out CV on up to 3 interior curves.

    Fitted on at most 1500 points (the kernel matrix grows as n², prediction as n); the CV runs on at most 600.
    """

    name = "krr"
    max_points = 1500
    gammas = (3.0, 30.0)
    alphas = (1e-5, 1e-3)

    def _estimator(self, x, y, x2):
        from sklearn.kernel_ridge import KernelRidge

        def make(gamma: float, alpha: float):
            return lambda: _Fixed(KernelRidge(kernel="rbf", gamma=gamma, alpha=alpha))

        values, labels = _x2_labels(x2)
        cv = _thin(x[:, 0], x[:, 1], y, labels, 600)
        held = _interior_subset(np.unique(cv[1]) if values.size > 2 else np.empty(0), 3)
        scores = {}
        for gamma, alpha in itertools.product(self.gammas, self.alphas):
            if held.size:
                errors = leave_one_x2_out_rmse(make(gamma, alpha), *cv, held_out=held)
                scores[(gamma, alpha)] = float(np.mean(list(errors.values())))
        gamma, alpha = min(scores, key=scores.get) if scores else (10.0, 1e-4)
        self.params = {"gamma": gamma, "alpha": alpha, "cv_rmse_standardised": scores.get((gamma, alpha), math.nan)}
        return KernelRidge(kernel="rbf", gamma=gamma, alpha=alpha).fit(x, y)


class _Fixed:
    """A scikit-learn estimator behind fit(x1, x2, y) / predict(x1, x2), for the CV of an already standardised set."""

    name = "fixed"

    def __init__(self, estimator) -> None:
        self.estimator = estimator

    def fit(self, x1, x2, y) -> "_Fixed":
        self.estimator.fit(np.column_stack([x1, x2]), y)
        return self

    def predict(self, x1, x2) -> np.ndarray:
        return self.estimator.predict(np.column_stack([np.ravel(x1), np.ravel(x2)]))


class ForestBaseline(_Standardised):
    """Random forest (200 trees, fixed seed): piecewise constant, so its ∂M/∂T is steps, not a curve."""

    name = "forest"

    def _estimator(self, x, y, x2):
        from sklearn.ensemble import RandomForestRegressor

        self.params = {"n_estimators": 200}
        return RandomForestRegressor(n_estimators=200, random_state=0, n_jobs=1).fit(x, y)


class MLPBaseline(_Standardised):
    """scikit-learn MLP, 2 × 32 tanh, L-BFGS (full batch, up to 400 iterations), fixed seed: a small network
    with fixed settings, the paper's "MLP regressor" beside its searched Keras networks."""

    name = "mlp"
    max_points = 3000

    def _estimator(self, x, y, x2):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        model = MLPRegressor(hidden_layer_sizes=(32, 32), activation="tanh", solver="lbfgs", alpha=1e-6,
                             max_iter=400, tol=1e-9, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        self.params = {"iterations": int(model.n_iter_)}
        return model


def probe(model, x1: np.ndarray, x2: np.ndarray, n_t: int = 60) -> None:
    """Evaluate `model` on every X2 curve and midway between neighbouring curves, across the X1 range (raises
    what the model raises: numpy.linalg.LinAlgError for a singular local RBF system)."""
    x2_values = np.unique(np.asarray(x2, dtype=float))
    between = np.concatenate([x2_values, (x2_values[1:] + x2_values[:-1]) / 2])
    tt, hh = np.meshgrid(np.linspace(np.min(x1), np.max(x1), n_t), between)
    model.predict(tt.ravel(), hh.ravel())


def _thin(
    x1: np.ndarray, x2: np.ndarray, y: np.ndarray, labels: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every k-th point of every curve (sorted by X1) so that at most max_points remain."""
    if x1.size <= max_points:
        return x1, x2, y
    step = math.ceil(x1.size / max_points)
    keep = np.concatenate([np.flatnonzero(labels == k)[np.argsort(x1[labels == k])][::step] for k in np.unique(labels)])
    return x1[keep], x2[keep], y[keep]


def _interior_subset(x2_values: np.ndarray, n: int) -> np.ndarray:
    """Up to n interior X2 values, evenly spread (the end curves cannot be interpolated)."""
    interior = x2_values[1:-1]
    if interior.size <= n:
        return interior
    idx = np.unique(np.round(np.linspace(0, interior.size - 1, n)).astype(int))
    return interior[idx]


# --------------------------------------------------------------------------- scoring


def leave_one_x2_out_rmse(
    make: Callable[[], Interpolator],
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray,
    *,
    interior_only: bool = True,
    held_out: np.ndarray | None = None,
) -> dict[float, float]:
    """RMSE on each measured X2 curve of a model fitted without that curve.

    `make` returns a fresh unfitted model. Only interior curves are held out by
    default (removing an end curve turns interpolation into extrapolation);
    `held_out` restricts the folds to given X2 values.
    """
    x1, x2, y = _check_xy(x1, x2, y)
    x2_values, labels = _x2_labels(x2)
    if x2_values.size < 2:
        raise ValueError("leave-one-X2-out needs at least two X2 curves")
    folds = np.arange(x2_values.size)
    if interior_only:
        folds = folds[1:-1]
    if held_out is not None:
        wanted = np.asarray(held_out, dtype=float)
        atol = _X2_RTOL * float(x2_values[-1] - x2_values[0])
        folds = np.array([k for k in folds if np.any(np.isclose(x2_values[k], wanted, rtol=1e-9, atol=atol))], dtype=int)
    out: dict[float, float] = {}
    for k in folds:
        test = labels == k
        model = make().fit(x1[~test], x2[~test], y[~test])
        pred = np.asarray(model.predict(x1[test], x2[test]), dtype=float)
        out[float(x2_values[k])] = float(np.sqrt(np.mean((pred - y[test]) ** 2)))
    return out


def mean_leave_one_x2_out_rmse(
    make: Callable[[], Interpolator], x1: np.ndarray, x2: np.ndarray, y: np.ndarray, *, interior_only: bool = True
) -> float:
    """Mean over held-out curves of :func:`leave_one_x2_out_rmse` (NaN when there is no fold)."""
    errors = leave_one_x2_out_rmse(make, x1, x2, y, interior_only=interior_only)
    return float(np.mean(list(errors.values()))) if errors else math.nan


BASELINES: dict[str, type] = {
    "linear": LinearAlongX2,
    "pchip": PchipAlongX2,
    "pchip-cbrt": PchipCbrtAlongX2,
    "arrott": ArrottAlongX2,
    "spline": SplineAlongX2,
    "rbf": RBFBaseline,
    "krr": KernelRidgeBaseline,
    "forest": ForestBaseline,
    "mlp": MLPBaseline,
}
ALONG_X1_ON_ISOTHERMS = ("pchip", "spline")  # make(): PCHIP along the field within each isotherm


def make(which: str, isotherm: bool = False, h_unit: str | None = None):
    """A fresh, unfitted baseline `which` (a key of :data:`BASELINES`). For isotherms (X1 the field) PCHIP and
    the spline across X2 follow each M(H) curve by PCHIP along X1 too (see :class:`_AlongX2`); the linear
    baseline stays linear both ways (the paper's linear interpolation). `h_unit`: the field's unit, which the
    Arrott interpolation of M(T) sweeps uses (:class:`ArrottAlongX2`)."""
    model = ArrottAlongX2(None if isotherm else h_unit) if which == "arrott" else BASELINES[which]()
    if isotherm and which in ALONG_X1_ON_ISOTHERMS:
        model.along_x1 = "pchip"
    return model


LABELS = {"linear": "linear interpolation along H", "pchip": "PCHIP along H", "pchip-cbrt": "PCHIP along H^(1/3)",
          "arrott": "Arrott-plot interpolation along H",
          "spline": "cubic spline along H",
          "rbf": "RBF surface", "krr": "kernel ridge", "forest": "random forest", "mlp": "MLP (scikit-learn)"}
