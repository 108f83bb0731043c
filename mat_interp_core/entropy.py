"""Magnetic entropy change |ΔS_M|(T, ΔH) from a long (T, H, M) table.

Maxwell relation: ΔS_M(T, ΔH) = ∫_{H0}^{H0+ΔH} (∂M/∂T)_H d(μ0H). With M in
A·m²/kg (= emu/g = J/(kg·T)) and μ0H in tesla, ΔS_M is in J/(kg·K). The unit
conversions are explicit arguments (unit names, sample mass, molar mass): a
missing one is an error, never a silent default.

On a grid with few fields the trapezoid between two far-apart fields is a
linear interpolation along H, which produces the well-known spikes in
|ΔS_M|(T); :func:`spikiness` puts a number on them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "M_UNITS",
    "H_UNITS",
    "METHODS",
    "UnitError",
    "to_specific_moment",
    "to_tesla",
    "delta_s",
    "figures_of_merit",
    "spikiness",
]

M_UNITS = ("emu", "emu/g", "A m2/kg", "muB/f.u.")
H_UNITS = ("Oe", "kOe", "T", "A/m")
METHODS = ("maxwell", "isothermal")

MU_0 = 4e-7 * np.pi  # T·m/A; the conventional value, within 1e-9 of CODATA 2018
MU_B = 9.2740100783e-24  # J/T (A·m²)
N_A = 6.02214076e23  # 1/mol (exact)

_H_TOL_T = 1e-9  # fields closer than this (in T) are the same field
_T_TOL_K = 1e-6  # temperatures closer than this (in K) are the same temperature


class UnitError(ValueError):
    """An unknown unit, or a unit that needs a mass or molar mass that was not given."""


# --------------------------------------------------------------------------- units


def to_specific_moment(
    m: np.ndarray | float,
    unit: str,
    *,
    mass_mg: float | None = None,
    molar_mass_g: float | None = None,
) -> np.ndarray:
    """Magnetisation in A·m²/kg (= emu/g).

    emu needs the sample mass (emu / (mass_mg·1e-3 g)); μB per formula unit
    needs the molar mass (1 μB/f.u. = N_A·μB / M_molar[kg/mol] A·m²/kg).
    """
    values = np.asarray(m, dtype=float)
    if unit == "emu/g" or unit == "A m2/kg":
        return values.copy()
    if unit == "emu":
        if mass_mg is None:
            raise UnitError("magnetisation in 'emu' needs the sample mass: pass mass_mg (in mg)")
        _check_positive("mass_mg", mass_mg)
        return values / (mass_mg * 1e-3)
    if unit == "muB/f.u.":
        if molar_mass_g is None:
            raise UnitError(
                "magnetisation in 'muB/f.u.' needs the molar mass: pass molar_mass_g (g per mole of formula units)"
            )
        _check_positive("molar_mass_g", molar_mass_g)
        return values * N_A * MU_B / (molar_mass_g * 1e-3)
    raise UnitError(f"unknown magnetisation unit {unit!r}; allowed units are {', '.join(map(repr, M_UNITS))}")


def to_tesla(h: np.ndarray | float, unit: str) -> np.ndarray:
    """Field as μ0H in tesla: Oe / 1e4, kOe / 10, T unchanged, A/m × 4π·1e-7."""
    values = np.asarray(h, dtype=float)
    factors = {"Oe": 1e-4, "kOe": 0.1, "T": 1.0, "A/m": MU_0}
    if unit not in factors:
        raise UnitError(f"unknown field unit {unit!r}; allowed units are {', '.join(map(repr, H_UNITS))}")
    return values * factors[unit]


def _check_positive(name: str, value: float) -> None:
    try:
        ok = np.isfinite(value) and value > 0
    except TypeError:
        ok = False
    if not ok:
        raise UnitError(f"{name} must be a positive number, got {value!r}")


# --------------------------------------------------------------------------- ΔS_M


def delta_s(
    table: pd.DataFrame,
    *,
    t_col: str,
    h_col: str,
    m_col: str,
    m_unit: str,
    h_unit: str,
    mass_mg: float | None = None,
    molar_mass_g: float | None = None,
    dh_tesla: float | Sequence[float] | None = None,
    method: str = "maxwell",
    t_grid: Sequence[float] | None = None,
) -> pd.DataFrame:
    """|ΔS_M|(T) in J/(kg·K) for each field change μ0ΔH, integrated from the lowest field H0.

    Returns a long table with columns T_K, dH_T, dS_J_per_kgK (one curve per
    ΔH). dh_tesla=None gives one curve per measured field above H0, with
    ΔH = field − H0. A ΔH whose upper end H0+ΔH lies between two fields is
    evaluated by interpolating the cumulative integral linearly; one that
    overshoots the highest field by at most H0 (the usual 0.01…5 T with
    ΔH = 5 T) stops at the highest field; anything beyond is an error.

    method "maxwell": every M(T) on one temperature grid (linear in T),
    central differences ∂M/∂T, trapezoid over μ0H. method "isothermal":
    forward differences between neighbouring grid temperatures, reported at
    the midpoints, same integration.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(map(repr, METHODS))}")
    missing = [c for c in (t_col, h_col, m_col) if c not in table.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the table; it has {list(table.columns)}")
    t = np.asarray(table[t_col], dtype=float)
    h = to_tesla(np.asarray(table[h_col], dtype=float), h_unit)
    m = to_specific_moment(np.asarray(table[m_col], dtype=float), m_unit, mass_mg=mass_mg, molar_mass_g=molar_mass_g)
    bad = ~(np.isfinite(t) & np.isfinite(h) & np.isfinite(m))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"row {row}: T, H and M must be finite numbers (columns {t_col!r}, {h_col!r}, {m_col!r})")

    fields, curves = _split_by_field(t, h, m)
    if len(fields) < 2:
        raise ValueError(f"ΔS_M needs M(T) at two fields at least; the table has {len(fields)}")
    grid = _common_grid(curves, t_grid)
    if grid.size < 2:
        raise ValueError("the fields' temperature ranges overlap in fewer than two temperatures")
    m_grid = np.stack([np.interp(grid, ct, cm) for ct, cm in curves])  # (n_fields, n_T)

    if method == "maxwell":
        t_out = grid
        dmdt = np.gradient(m_grid, grid, axis=1)
    else:
        t_out = 0.5 * (grid[1:] + grid[:-1])
        dmdt = np.diff(m_grid, axis=1) / np.diff(grid)[None, :]

    # Cumulative trapezoid over μ0H from H0: cum[k] = ∫_{H0}^{H_k} (∂M/∂T) dμ0H.
    steps = np.diff(fields)[:, None]
    cum = np.vstack([np.zeros(t_out.size), np.cumsum(0.5 * steps * (dmdt[1:] + dmdt[:-1]), axis=0)])

    h0 = fields[0]
    dhs = fields[1:] - h0 if dh_tesla is None else np.atleast_1d(np.asarray(dh_tesla, dtype=float))
    out = []
    for dh in dhs:
        h_up = _upper_field(float(dh), fields)
        k = int(np.clip(np.searchsorted(fields, h_up, side="right") - 1, 0, fields.size - 2))
        w = (h_up - fields[k]) / (fields[k + 1] - fields[k])
        ds = cum[k] + w * (cum[k + 1] - cum[k])
        out.append(pd.DataFrame({"T_K": t_out, "dH_T": float(dh), "dS_J_per_kgK": np.abs(ds)}))
    return pd.concat(out, ignore_index=True)


def _split_by_field(t: np.ndarray, h: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Fields (ascending, in T) and each field's (T, M) sorted by T, repeated temperatures averaged."""
    order = np.argsort(h, kind="stable")
    hs = h[order]
    new = np.concatenate([[True], np.diff(hs) > _H_TOL_T])
    labels = np.empty_like(order)
    labels[order] = np.cumsum(new) - 1
    fields = np.array([h[labels == k].mean() for k in range(labels.max() + 1)])
    curves = []
    for k in range(fields.size):
        sel = labels == k
        frame = pd.DataFrame({"t": t[sel], "m": m[sel]}).groupby("t", sort=True)["m"].mean()
        curves.append((frame.index.to_numpy(dtype=float), frame.to_numpy(dtype=float)))
    return fields, curves


def _common_grid(curves: list[tuple[np.ndarray, np.ndarray]], t_grid: Sequence[float] | None) -> np.ndarray:
    """One temperature grid inside every field's measured range (no extrapolation).

    Shared temperatures are kept as they are; otherwise a uniform grid over the
    overlap with the median spacing of the measurements.
    """
    lo = max(ct[0] for ct, _ in curves)
    hi = min(ct[-1] for ct, _ in curves)
    if not hi > lo:
        raise ValueError(f"the fields' temperature ranges do not overlap (common range [{lo:g}, {hi:g}] K)")
    if t_grid is not None:
        grid = np.unique(np.asarray(t_grid, dtype=float))
        if grid.size and (grid[0] < lo - _T_TOL_K or grid[-1] > hi + _T_TOL_K):
            raise ValueError(
                f"t_grid spans [{grid[0]:g}, {grid[-1]:g}] K but every field is measured only in [{lo:g}, {hi:g}] K"
            )
        return np.clip(grid, lo, hi)
    inside = [ct[(ct >= lo - _T_TOL_K) & (ct <= hi + _T_TOL_K)] for ct, _ in curves]
    first = inside[0]
    if all(c.size == first.size and np.allclose(c, first, rtol=0, atol=_T_TOL_K) for c in inside):
        return np.clip(first, lo, hi)
    spacing = np.median(np.concatenate([np.diff(ct) for ct, _ in curves if ct.size > 1]))
    n = max(2, int(round((hi - lo) / spacing)) + 1)
    return np.linspace(lo, hi, n)


def _upper_field(dh: float, fields: np.ndarray) -> float:
    """H0 + ΔH, or the highest field when ΔH overshoots it by no more than H0."""
    if not np.isfinite(dh) or dh <= 0:
        raise ValueError(f"ΔH must be a positive field change in tesla, got {dh!r}")
    h0, h_max = fields[0], fields[-1]
    h_up = h0 + dh
    if h_up <= h_max:
        return h_up
    if h_up - h_max <= abs(h0) + 1e-9:
        return h_max
    raise ValueError(
        f"ΔH = {dh:g} T is not available: the fields span {h0:g}…{h_max:g} T, so ΔH can be at most {h_max - h0:g} T "
        f"(or {h_max:g} T when counting the lowest field as zero)"
    )


# --------------------------------------------------------------------------- figures of merit


def spikiness(t: np.ndarray, ds: np.ndarray) -> float:
    """Total variation of |ΔS_M|(T) divided by twice its peak.

    A clean single peak that rises from ~0 and falls back to ~0 scores 1.0
    (less if the ends stay high); every spurious wiggle adds its up-and-down
    excursion, so spiky curves score above 1. NaN values are ignored; a curve
    without a positive peak gives NaN.
    """
    t = np.asarray(t, dtype=float)
    y = np.abs(np.asarray(ds, dtype=float))
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if y.size == 0 or not y.max() > 0:
        return float("nan")
    y = y[np.argsort(t, kind="stable")]
    return float(np.abs(np.diff(y)).sum() / (2 * y.max()))


def figures_of_merit(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per dH_T: peak, T_peak, FWHM, RCP = peak × FWHM, RC and spikiness.

    FWHM is found from the half-maximum crossings on both sides of the peak by
    linear interpolation (NaN if the curve does not fall to half on both
    sides); RC is the trapezoid area under the curve between those crossings.
    """
    rows = []
    for dh, part in curves.groupby("dH_T", sort=True):
        part = part.sort_values("T_K")
        t = part["T_K"].to_numpy(dtype=float)
        y = part["dS_J_per_kgK"].to_numpy(dtype=float)
        rows.append({"dH_T": float(dh), **_merits(t, y)})
    columns = ["dH_T", "peak_J_per_kgK", "T_peak_K", "FWHM_K", "RCP_J_per_kg", "RC_J_per_kg", "spikiness"]
    return pd.DataFrame(rows, columns=columns)


def _merits(t: np.ndarray, y: np.ndarray) -> dict[str, float]:
    nan = float("nan")
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if y.size == 0:
        return dict(peak_J_per_kgK=nan, T_peak_K=nan, FWHM_K=nan, RCP_J_per_kg=nan, RC_J_per_kg=nan, spikiness=nan)
    i = int(np.argmax(y))
    peak = float(y[i])
    half = 0.5 * peak
    left = _half_crossing(t[: i + 1][::-1], y[: i + 1][::-1], half)
    right = _half_crossing(t[i:], y[i:], half)
    if left is None or right is None:
        fwhm = rc = nan
    else:
        fwhm = right - left
        inner = (t > left) & (t < right)
        tt = np.concatenate([[left], t[inner], [right]])
        yy = np.concatenate([[half], y[inner], [half]])
        rc = float(np.trapezoid(yy, tt))
    return dict(
        peak_J_per_kgK=peak,
        T_peak_K=float(t[i]),
        FWHM_K=fwhm,
        RCP_J_per_kg=peak * fwhm,
        RC_J_per_kg=rc,
        spikiness=spikiness(t, y),
    )


def _half_crossing(t: np.ndarray, y: np.ndarray, half: float) -> float | None:
    """Temperature where y (walked away from the peak) first drops below half, linearly interpolated."""
    below = np.flatnonzero(y < half)
    if below.size == 0:
        return None
    j = int(below[0])  # j ≥ 1 since y[0] is the peak
    t0, t1, y0, y1 = t[j - 1], t[j], y[j - 1], y[j]
    return float(t0 + (half - y0) * (t1 - t0) / (y1 - y0))
