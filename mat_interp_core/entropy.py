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

from dataclasses import dataclass
from typing import Mapping, Sequence

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
    "DEFAULT_LIFTS_K",
    "tec",
    "tec_column",
    "parse_lifts",
    "with_tec",
    "spikiness",
    "MagnetUnits",
    "resolve_units",
    "fine_axes",
    "delta_s_band",
    "merit_bounds",
    "peak_span",
    "BOUNDED_MERITS",
    "band_figures",
    "SimulatedEntropy",
    "simulated_delta_s",
    "measured_dh_tesla",
    "check_dh",
    "ZERO_FIELD_T",
]

M_UNITS = ("emu", "emu/g", "A m2/kg", "muB/f.u.")
H_UNITS = ("Oe", "kOe", "mT", "T", "A/m")
METHODS = ("maxwell", "isothermal")

MU_0 = 4e-7 * np.pi  # T·m/A; the conventional value, within 1e-9 of CODATA 2018
MU_B = 9.2740100783e-24  # J/T (A·m²)
N_A = 6.02214076e23  # 1/mol (exact)

_H_TOL_T = 1e-9  # fields closer than this (in T) are the same field
_T_TOL_K = 1e-6  # temperatures closer than this (in K) are the same temperature


class UnitError(ValueError):
    """An unknown unit, or a unit that needs a mass or molar mass that was not given.

    ``fields`` names the unit settings it is about (m_unit, h_unit, mass_mg, molar_mass_g): each front end
    names them its own way (a command-line option, a field of the page)."""

    def __init__(self, message: str, fields: Sequence[str] = ()):
        super().__init__(message)
        self.fields = tuple(fields)


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
            raise UnitError("magnetisation in 'emu' needs the sample mass (in mg)", fields=("mass_mg",))
        _check_positive("mass_mg", mass_mg)
        return values / (mass_mg * 1e-3)
    if unit == "muB/f.u.":
        if molar_mass_g is None:
            raise UnitError("magnetisation in 'muB/f.u.' needs the molar mass (g per mole of formula units)",
                            fields=("molar_mass_g",))
        _check_positive("molar_mass_g", molar_mass_g)
        return values * N_A * MU_B / (molar_mass_g * 1e-3)
    raise UnitError(f"unknown magnetisation unit {unit!r}; allowed units are {', '.join(map(repr, M_UNITS))}",
                    fields=("m_unit",))


def to_tesla(h: np.ndarray | float, unit: str) -> np.ndarray:
    """Field as μ0H in tesla: Oe / 1e4, kOe / 10, mT / 1e3, T unchanged, A/m × 4π·1e-7."""
    values = np.asarray(h, dtype=float)
    factors = {"Oe": 1e-4, "kOe": 0.1, "mT": 1e-3, "T": 1.0, "A/m": MU_0}
    if unit not in factors:
        raise UnitError(f"unknown field unit {unit!r}; allowed units are {', '.join(map(repr, H_UNITS))}",
                        fields=("h_unit",))
    return values * factors[unit]


def _check_positive(name: str, value: float) -> None:
    try:
        ok = np.isfinite(value) and value > 0
    except TypeError:
        ok = False
    if not ok:
        raise UnitError(f"{name} must be a positive number, got {value!r}", fields=(name,))


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


def check_dh(dh_tesla, fields_tesla) -> None:
    """Raise the sentence :func:`_upper_field` gives for the first ΔH the measured field range cannot give, before
    anything is simulated (a ΔH of 5 T on data up to 4.9 T is refused at once, not after the grid)."""
    fields = np.asarray(fields_tesla, dtype=float)
    fields = fields[np.isfinite(fields)]
    if fields.size:
        for dh in np.atleast_1d(np.asarray(dh_tesla, dtype=float)):
            _upper_field(float(dh), np.array([fields.min(), fields.max()]))


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


DEFAULT_LIFTS_K = (3.0, 10.0)  # temperature spans ΔT_lift of the TEC figures


def tec_column(lift_k: float) -> str:
    """Column name of TEC(ΔT_lift) in :func:`figures_of_merit`, e.g. 'TEC_3K_J_per_kgK'."""
    return f"TEC_{lift_k:g}K_J_per_kgK"


def parse_lifts(values: Sequence[float]) -> tuple[float, ...]:
    """The TEC temperature spans as positive floats (a ValueError names the bad one)."""
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = float("nan")
        if not (np.isfinite(f) and f > 0):
            raise ValueError(f"a TEC temperature span ΔT_lift must be a positive number of kelvin, got {v!r}")
        out.append(f)
    return tuple(dict.fromkeys(out))


def figures_of_merit(curves: pd.DataFrame, lifts: Sequence[float] = DEFAULT_LIFTS_K) -> pd.DataFrame:
    """One row per dH_T: peak, T_peak, FWHM, RCP = peak × FWHM, RC, TEC(ΔT_lift) per lift, and spikiness.

    FWHM is found from the half-maximum crossings on both sides of the peak by
    linear interpolation (NaN if the curve does not fall to half on both
    sides); RC is the trapezoid area under the curve between those crossings.
    TEC(ΔT_lift) (Griffith et al. 2018) is the largest mean |ΔS_M| over any
    window of ΔT_lift kelvin inside the curve's range (NaN if the range is shorter).
    """
    lifts = parse_lifts(lifts)
    rows = []
    for dh, part in curves.groupby("dH_T", sort=True):
        part = part.sort_values("T_K")
        t = part["T_K"].to_numpy(dtype=float)
        y = part["dS_J_per_kgK"].to_numpy(dtype=float)
        rows.append({"dH_T": float(dh), **_merits(t, y, lifts)})
    columns = ["dH_T", "peak_J_per_kgK", "T_peak_K", "FWHM_K", "RCP_J_per_kg", "RC_J_per_kg",
               *map(tec_column, lifts), "spikiness"]
    return pd.DataFrame(rows, columns=columns)


BOUNDED_MERITS = ("FWHM_K", "RCP_J_per_kg", "RC_J_per_kg")  # with the TEC columns: the figures merit_bounds bounds


def merit_bounds(curves: pd.DataFrame, lifts: Sequence[float] = DEFAULT_LIFTS_K) -> pd.DataFrame:
    """The band of the figures of merit other than the peak (which ``simulate.with_band`` bounds at the peak):
    each figure of the band's lower and upper edge curves (`curves`' dS_low and dS_high), as `<figure>_low`
    and `<figure>_high`, the smaller and the larger of the two, per dH_T; T_peak_K_low and T_peak_K_high are
    :func:`peak_span`. TEC is a mean of the curve, so its
    edges bound it; the FWHM (and RCP, RC with it) of the two edges is where the band puts the curve's width."""
    edges = [figures_of_merit(curves.assign(dS_J_per_kgK=curves[c]), lifts).set_index("dH_T")
             for c in ("dS_low", "dS_high")]
    names = [*BOUNDED_MERITS, *map(tec_column, parse_lifts(lifts))]
    out = pd.DataFrame(index=edges[0].index)
    spans = {float(dh): peak_span(*(part.sort_values("T_K")[c].to_numpy(dtype=float)
                                    for c in ("T_K", "dS_low", "dS_high")))
             for dh, part in curves.groupby("dH_T", sort=True)}
    out["T_peak_K_low"] = [spans[float(dh)][0] for dh in out.index]
    out["T_peak_K_high"] = [spans[float(dh)][1] for dh in out.index]
    for name in names:
        out[f"{name}_low"] = np.fmin(edges[0][name], edges[1][name])
        out[f"{name}_high"] = np.fmax(edges[0][name], edges[1][name])
    return out.reset_index()


def peak_span(t: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """Where the peak of any curve inside the band (low ≤ y ≤ high at every T) can be: the temperatures at which
    the upper edge reaches the highest point of the lower edge, from the first to the last (linearly
    interpolated crossings). On a broad peak this span is wide, which is the honest answer: the band cannot
    tell where on the plateau the maximum lies. (nan, nan) without a band."""
    keep = np.isfinite(t) & np.isfinite(low) & np.isfinite(high)
    t, low, high = t[keep], low[keep], high[keep]
    if t.size == 0:
        return float("nan"), float("nan")
    floor = float(np.max(low))
    above = np.flatnonzero(high >= floor)
    i, j = int(above[0]), int(above[-1])

    def crossing(a: int, b: int) -> float:  # between the node a (below the floor) and b (at or above it)
        return float(t[a] + (floor - high[a]) * (t[b] - t[a]) / (high[b] - high[a]))

    return (crossing(i - 1, i) if i > 0 else float(t[0]),
            crossing(j + 1, j) if j < t.size - 1 else float(t[-1]))


def with_tec(figures: pd.DataFrame, curves: pd.DataFrame, lifts: Sequence[float]) -> pd.DataFrame:
    """`figures` (any figures-of-merit table with dH_T) with its TEC columns replaced by those for `lifts`."""
    lifts = parse_lifts(lifts)
    tecs = pd.DataFrame([{"dH_T": float(dh), **{tec_column(L): tec(*_sorted_curve(part), L) for L in lifts}}
                         for dh, part in curves.groupby("dH_T", sort=True)])
    kept = figures.drop(columns=[c for c in figures.columns if c.startswith("TEC_")])
    out = kept.merge(tecs, on="dH_T", how="left")
    at = list(kept.columns).index("spikiness") if "spikiness" in kept else len(kept.columns)
    cols = [c for c in kept.columns[:at]] + [tec_column(L) for L in lifts] + [c for c in kept.columns[at:]]
    return out[cols]


def _sorted_curve(part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(T, |ΔS_M|) of one curve, sorted by T, finite values only."""
    part = part.sort_values("T_K")
    t = part["T_K"].to_numpy(dtype=float)
    y = part["dS_J_per_kgK"].to_numpy(dtype=float)
    keep = np.isfinite(t) & np.isfinite(y)
    return t[keep], y[keep]


def tec(t: np.ndarray, y: np.ndarray, lift_k: float) -> float:
    """TEC(ΔT_lift): max over T_mid of the mean of y over [T_mid − ΔT_lift/2, T_mid + ΔT_lift/2].

    y is taken as piecewise linear in t (sorted); window centres are scanned
    in steps of a quarter of the finest spacing, where the windowed mean is
    flat to second order at its maximum.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if t.size < 2 or t[-1] - t[0] < lift_k * (1 - 1e-9):
        return float("nan")
    cum = np.concatenate([[0.0], np.cumsum(np.diff(t) * 0.5 * (y[1:] + y[:-1]))])

    def area_to(x: np.ndarray) -> np.ndarray:  # ∫_{t0}^{x} y dT, exact for piecewise-linear y
        i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, t.size - 2)
        return cum[i] + (x - t[i]) * 0.5 * (y[i] + np.interp(x, t, y))

    half = 0.5 * lift_k
    gaps = np.diff(t)
    step = max(float(np.min(gaps[gaps > 0])) / 4, (t[-1] - t[0]) * 1e-5)
    mids = np.append(np.arange(t[0] + half, t[-1] - half, step), t[-1] - half)
    return float(np.max((area_to(mids + half) - area_to(mids - half)) / lift_k))


def _merits(t: np.ndarray, y: np.ndarray, lifts: Sequence[float] = DEFAULT_LIFTS_K) -> dict[str, float]:
    nan = float("nan")
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    tecs = {tec_column(lift): tec(t, y, lift) for lift in lifts}
    if y.size == 0:
        return dict(peak_J_per_kgK=nan, T_peak_K=nan, FWHM_K=nan, RCP_J_per_kg=nan, RC_J_per_kg=nan, **tecs,
                    spikiness=nan)
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
        **tecs,
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


# --------------------------------------------------------------------------- units of a project


@dataclass(frozen=True)
class MagnetUnits:
    """The explicit unit choice behind a |ΔS_M| figure (checked on construction)."""

    m_unit: str
    h_unit: str
    mass_mg: float | None = None
    molar_mass_g: float | None = None

    def __post_init__(self) -> None:
        to_tesla(1.0, self.h_unit)  # raises UnitError on an unknown unit
        to_specific_moment(1.0, self.m_unit, mass_mg=self.mass_mg, molar_mass_g=self.molar_mass_g)

    def kwargs(self) -> dict[str, object]:
        """Keyword arguments of :func:`delta_s`."""
        return dict(m_unit=self.m_unit, h_unit=self.h_unit, mass_mg=self.mass_mg, molar_mass_g=self.molar_mass_g)

    def describe(self) -> str:
        extra = f", sample mass {self.mass_mg:g} mg" if self.m_unit == "emu" else ""
        extra += f", molar mass {self.molar_mass_g:g} g/mol" if self.m_unit == "muB/f.u." else ""
        return f"M in {self.m_unit}, H in {self.h_unit}{extra}"


def resolve_units(
    stored: Mapping[str, object] | None,
    *,
    m_unit: str | None = None,
    h_unit: str | None = None,
    mass_mg: float | None = None,
    molar_mass_g: float | None = None,
) -> MagnetUnits:
    """Units for |ΔS_M|: the explicit arguments first, then those stored with the project.

    `stored` is a project's ``units`` dict (the GUI stores m_unit, h_unit,
    mass_mg, molar_mass_g; the CLI stores y and x2, which count when they name
    a magnetisation or field unit). Anything still missing is a
    :class:`UnitError` that says which option supplies it — never a default.
    """
    stored = dict(stored or {})

    def pick(explicit, *keys, allowed=None):
        if explicit not in (None, ""):
            return explicit
        for key in keys:
            value = stored.get(key)
            if value not in (None, "") and (allowed is None or value in allowed):
                return value
        return None

    m = pick(m_unit, "m_unit") or pick(None, "y", allowed=M_UNITS)
    h = pick(h_unit, "h_unit") or pick(None, "x2", allowed=H_UNITS)
    mass = pick(mass_mg, "mass_mg")
    molar = pick(molar_mass_g, "molar_mass_g")
    missing = []  # (field, what it is)
    if m is None:
        missing.append(("m_unit", f"the magnetisation unit (one of {', '.join(M_UNITS)})"))
    if h is None:
        missing.append(("h_unit", f"the field unit (one of {', '.join(H_UNITS)})"))
    if m == "emu" and mass is None:
        missing.append(("mass_mg", "the sample mass (in mg), needed because M is in emu"))
    if m == "muB/f.u." and molar is None:
        missing.append(("molar_mass_g", "the molar mass (g per mole of formula units), needed for muB/f.u."))
    if missing:
        raise UnitError("|ΔS_M| needs explicit units and the project does not store them: give "
                        + "; ".join(what for _, what in missing), fields=[name for name, _ in missing])
    return MagnetUnits(
        m_unit=str(m),
        h_unit=str(h),
        mass_mg=None if mass is None else float(mass),
        molar_mass_g=None if molar is None else float(molar),
    )


# --------------------------------------------------------------------------- the grid the integral needs

def _median_spacing(curves, default: float) -> float:
    diffs = np.concatenate([np.diff(ct) for ct, _ in curves if ct.size > 1])
    return float(np.median(diffs)) if diffs.size else float(default)


def measured_t_step(x1, x2) -> float:
    """The median temperature step along the measured M(T) curves (K): how closely the data place a peak."""
    x1 = np.asarray(x1, dtype=float).ravel()
    _, curves = _split_by_field(x1, np.asarray(x2, dtype=float).ravel(), np.zeros_like(x1))
    return _median_spacing(curves, float(np.ptp(x1)))


DEFAULT_T_STEP_K = 0.1  # at most; finer when the measurement is finer (spacing / 5)
DEFAULT_H_STEP_T = 0.02  # field step of the simulated grid (0.05 T at most before T is coarsened)
_MAX_H_STEP_T = 0.05


def fine_axes(
    x1: np.ndarray,
    x2: np.ndarray,
    *,
    h_unit: str,
    t_step: float | None = None,
    h_step_t: float | None = None,
    max_points: int = 5_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Temperature and field axes of a simulated grid fine enough for the Maxwell integral.

    x1, x2: the measured temperatures (K) and fields (in `h_unit`) of the
    training data. The temperature axis covers the range every field was
    measured over (no extrapolation) with step `t_step`, by default
    min(0.1 K, measured spacing / 5); the field axis runs from the lowest to
    the highest measured field with step `h_step_t` tesla (default 0.02 T),
    so H0 + ΔH lands on a node for whole-tesla ΔH, except over the first
    tesla (see :func:`_field_axis`), where the nodes crowd towards H0 so
    that the integral converges when H0 is 0 T, where ∂M/∂T is singular at
    T_C. The integral's own discretisation error on the exact M of
    mean-field and Bean–Rodbell magnets, from 0 or 0.01 T, is < 0.5 % at
    ΔH = 1 and 5 T (tests/test_entropy_convergence.py); simulated points are cheap. When the grid would exceed
    `max_points`, the field step grows up to 0.05 T, then the temperature
    step grows. The field axis is returned in `h_unit`.
    """
    x1 = np.asarray(x1, dtype=float).ravel()
    x2 = np.asarray(x2, dtype=float).ravel()
    if x1.size == 0 or x1.size != x2.size:
        raise ValueError("x1 and x2 must be non-empty and of equal length")
    factor = float(to_tesla(1.0, h_unit))
    h_t = x2 * factor
    fields, curves = _split_by_field(x1, h_t, np.zeros_like(x1))
    if fields.size < 2:
        raise ValueError(f"ΔS_M needs M(T) at two fields at least; the data has {fields.size}")
    lo = max(ct[0] for ct, _ in curves)
    hi = min(ct[-1] for ct, _ in curves)
    if not hi > lo:
        raise ValueError(f"the fields' temperature ranges do not overlap (common range [{lo:g}, {hi:g}] K)")
    spacing = _median_spacing(curves, hi - lo)
    for name, value in (("t_step", t_step), ("h_step_t", h_step_t)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    dt = float(t_step) if t_step is not None else min(DEFAULT_T_STEP_K, spacing / 5)
    dh = float(h_step_t) if h_step_t is not None else DEFAULT_H_STEP_T
    h0, h_max = float(fields[0]), float(fields[-1])

    def count(dt_: float, dh_: float) -> int:
        return (int(np.floor((hi - lo) / dt_ + 1e-9)) + 2) * _field_axis(h0, h_max, dh_).size

    if count(dt, dh) > max_points and h_step_t is None:
        dh = max(dh, min(_MAX_H_STEP_T, dh * count(dt, dh) / max_points))
    for _ in range(5):  # the count is not quite proportional to 1/dt (end nodes): a few rounds
        if count(dt, dh) <= max_points or t_step is not None:
            break
        dt = dt * count(dt, dh) / max_points * 1.01
    if count(dt, dh) > max_points:
        raise ValueError(
            f"a {dt:g} K × {dh:g} T grid has {count(dt, dh):,} points, over the limit of {max_points:,}; "
            "use larger steps or set MAT_INTERP_MAX_GRID_POINTS"
        )
    t_axis = _axis(lo, hi, dt)
    h_axis = _field_axis(h0, h_max, dh)
    return t_axis, h_axis / factor


_CUBE_SPAN_T = 1.0  # the first tesla above H0 gets cube-spaced field nodes


def _field_axis(h0: float, h_max: float, step: float) -> np.ndarray:
    """Field nodes (T): H0 + L·(k/N)³ over the first L = min(1 T, span), then every `step` up to h_max.

    With H0 = 0 T, ∂M/∂T ∝ H^(-1/3) near T_C (mean field), so a uniform
    trapezoid over-weights the H = 0 node (+4 % at ΔH = 1 T with 0.02 T
    steps); in s = (k/N) the integrand times dH/ds is smooth, and the
    trapezoid converges. N is chosen so that the last cube step is `step`.
    """
    span = min(_CUBE_SPAN_T, h_max - h0)
    n = max(1, int(np.ceil(3 * span / step - 1e-9)))
    cube = h0 + span * (np.arange(n + 1) / n) ** 3
    if h_max - cube[-1] <= 1e-9 * max(1.0, abs(h_max)):
        return cube
    return np.concatenate([cube, _axis(cube[-1], h_max, step)[1:]])


def _axis(lo: float, hi: float, step: float) -> np.ndarray:
    """lo, lo + step, ... and hi itself (the last step may be shorter)."""
    n = int(np.floor((hi - lo) / step + 1e-9))
    axis = lo + step * np.arange(n + 1)
    if hi - axis[-1] > 1e-9 * max(1.0, abs(hi)):
        axis = np.append(axis, hi)
    return axis


# --------------------------------------------------------------------------- ensembles


def delta_s_band(members: Sequence[pd.DataFrame], **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """|ΔS_M| of every ensemble member and the band: mean ± standard deviation per T and ΔH.

    `members` are long (T, H, M) tables on one grid (one per model of the
    ensemble); `kwargs` go to :func:`delta_s` (columns, units, dh_tesla,
    method). Returns (band, per_member): band has columns T_K, dH_T,
    dS_J_per_kgK (the members' mean), dS_std (their population standard
    deviation), dS_min, dS_max; per_member is the long table of every
    member's curve with a `member` column. |ΔS_M| of the ensemble's mean
    prediction equals the band's mean wherever the members agree in sign.
    """
    if len(members) == 0:
        raise ValueError("an ensemble band needs at least one member")
    curves = []
    for i, table in enumerate(members):
        c = delta_s(table, **kwargs)
        c.insert(0, "member", i)
        curves.append(c)
    per_member = pd.concat(curves, ignore_index=True)
    stats = per_member.groupby(["dH_T", "T_K"], sort=True)["dS_J_per_kgK"].agg(["mean", "std", "min", "max"])
    band = stats.reset_index().rename(
        columns={"mean": "dS_J_per_kgK", "std": "dS_std", "min": "dS_min", "max": "dS_max"}
    )
    band["dS_std"] = per_member.groupby(["dH_T", "T_K"], sort=True)["dS_J_per_kgK"].std(ddof=0).to_numpy()
    return band[["T_K", "dH_T", "dS_J_per_kgK", "dS_std", "dS_min", "dS_max"]], per_member


def band_figures(per_member: pd.DataFrame) -> pd.DataFrame:
    """Per ΔH: mean ± standard deviation over the members of the peak and of its temperature."""
    rows = []
    for dh, part in per_member.groupby("dH_T", sort=True):
        peaks = figures_of_merit(part.drop(columns="member").assign(dH_T=part["member"]))
        rows.append(
            {
                "dH_T": float(dh),
                "members": len(peaks),
                "peak_mean": float(peaks["peak_J_per_kgK"].mean()),
                "peak_std": float(peaks["peak_J_per_kgK"].std(ddof=0)),
                "T_peak_mean": float(peaks["T_peak_K"].mean()),
                "T_peak_std": float(peaks["T_peak_K"].std(ddof=0)),
            }
        )
    return pd.DataFrame(rows, columns=["dH_T", "members", "peak_mean", "peak_std", "T_peak_mean", "T_peak_std"])


def result_figures(curves: pd.DataFrame, per_member: pd.DataFrame | None = None,
                   lifts: Sequence[float] = DEFAULT_LIFTS_K) -> pd.DataFrame:
    """A :class:`SimulatedEntropy`'s figures: those of its curves, and with members their peaks' mean ± std."""
    figures = figures_of_merit(curves, lifts)
    return figures if per_member is None else figures.merge(band_figures(per_member), on="dH_T", how="left")


# --------------------------------------------------------------------------- from any predictor


@dataclass
class SimulatedEntropy:
    """|ΔS_M| from a predictor on a fine grid, with its figures of merit (and band for an ensemble)."""

    curves: pd.DataFrame  # T_K, dH_T, dS_J_per_kgK [, dS_std, dS_min, dS_max for an ensemble]
    figures: pd.DataFrame  # figures_of_merit(curves) [+ members, peak_mean, peak_std, T_peak_mean, T_peak_std]
    t_axis: np.ndarray  # K
    h_axis: np.ndarray  # in the data's field unit
    per_member: pd.DataFrame | None = None  # every member's curve (ensembles only)
    models: str = ""  # which models answered (simulate.describe_models)
    band_note: str = ""  # what the calibrated band (curves' dS_band, figures' peak_band) means, or why there is none
    calibration: object = None  # the held-out evidence behind the band (uncertainty.Calibration)
    choice: pd.DataFrame | None = None  # the methods' held-out scores when one was chosen (choice.scores)
    warnings: tuple[str, ...] = ()  # what the band cannot see (uncertainty.band_warnings), also in band_note
    data_t_step: float = 0.0  # K between the measured temperatures (M(T) data with a band; 0 otherwise)

    @property
    def grid_description(self) -> str:
        dt = float(np.median(np.diff(self.t_axis))) if self.t_axis.size > 1 else float("nan")
        return f"{self.t_axis.size} × {self.h_axis.size} grid, ΔT = {dt:.3g} K"


def measured_dh_tesla(x2: np.ndarray, h_unit: str) -> list[float]:
    """The field changes the measurement itself offers: every field above the lowest, minus the lowest (T)."""
    h = np.unique(np.round(to_tesla(np.asarray(x2, dtype=float), h_unit), 9))
    return [float(v) for v in np.round(h[1:] - h[0], 9)]


ZERO_FIELD_T = 0.005  # a first field below this (0 T or a remanent few mT) makes |ΔS_M|(T) a cusp at T_C
_CUSP_REFINE = 5  # temperature step / this within ±max(1 K, 5 steps) of the zero-field transition


def _refine_at_transition(model, t_axis: np.ndarray, h0: float) -> np.ndarray:
    """`t_axis` with steps 5× finer around the model's steepest M(T) at the first field `h0`.

    From H0 = 0 T, S(T, 0) has a kink at T_C and |ΔS_M|(T) a cusp there; central
    differences average it over ±1 step and the grid misses its top by up to
    half a step, ~0.2 % of the peak per 0.01 K (−1 % at ΔH = 1 T with 0.1 K
    steps). The extra nodes cost one short band of temperatures.
    """
    if t_axis.size < 3:
        return t_axis
    m0 = np.asarray(model.predict(t_axis, np.full_like(t_axis, h0)), dtype=float)
    t_c = float(t_axis[int(np.argmax(np.abs(np.gradient(m0, t_axis))))])
    dt = float(np.median(np.diff(t_axis)))
    half = max(1.0, 5 * dt)
    fine = np.arange(t_c - half, t_c + half + 1e-9, dt / _CUSP_REFINE)
    fine = fine[(fine > t_axis[0]) & (fine < t_axis[-1])]
    merged = np.union1d(t_axis, fine)
    keep = np.concatenate([[True], np.diff(merged) > 1e-3 * dt])  # coinciding nodes (float noise) merge
    return merged[keep]


def simulated_delta_s(
    model,
    x1: np.ndarray,
    x2: np.ndarray,
    units: MagnetUnits,
    *,
    dh_tesla: float | Sequence[float] | None = None,
    t_step: float | None = None,
    h_step_t: float | None = None,
    method: str = "maxwell",
    max_points: int = 5_000_000,
    band: bool = True,
    lifts: Sequence[float] = DEFAULT_LIFTS_K,
) -> SimulatedEntropy:
    """|ΔS_M| of `model` (anything with ``predict(x1, x2)``) on the grid :func:`fine_axes` picks.

    x1, x2 are the training data's temperatures and fields (they fix the
    ranges). dh_tesla=None gives the measured field changes. When the model
    has ``members`` (an ensemble) and `band` is set, every member's |ΔS_M| is
    computed too: the curves gain dS_std/dS_min/dS_max and the figures the
    members' peak mean ± std. The main curve is |ΔS_M| of the model's own
    (mean) prediction. `lifts`: the TEC temperature spans of the figures.
    """
    t_axis, h_axis = fine_axes(x1, x2, h_unit=units.h_unit, t_step=t_step, h_step_t=h_step_t, max_points=max_points)
    if abs(float(to_tesla(h_axis[0], units.h_unit))) < ZERO_FIELD_T:
        t_axis = _refine_at_transition(model, t_axis, float(h_axis[0]))
    if dh_tesla is None:
        dh_tesla = measured_dh_tesla(x2, units.h_unit)
    tt, hh = np.meshgrid(t_axis, h_axis)
    members = list(getattr(model, "members", None) or []) if band else []
    kwargs = dict(t_col="T", h_col="H", m_col="M", dh_tesla=dh_tesla, method=method, **units.kwargs())

    def table(pred: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"T": tt.ravel(), "H": hh.ravel(), "M": np.asarray(pred, dtype=float).ravel()})

    if len(members) > 1:
        preds = [np.asarray(m.predict(tt, hh), dtype=float) for m in members]
        curves = delta_s(table(np.mean(preds, axis=0)), **kwargs)
        band_curves, per_member = delta_s_band([table(p) for p in preds], **kwargs)
        curves = curves.merge(band_curves.drop(columns="dS_J_per_kgK"), on=["T_K", "dH_T"], how="left")
        return SimulatedEntropy(curves, result_figures(curves, per_member, lifts), t_axis, h_axis, per_member)
    curves = delta_s(table(model.predict(tt, hh)), **kwargs)
    return SimulatedEntropy(curves, result_figures(curves, None, lifts), t_axis, h_axis)
