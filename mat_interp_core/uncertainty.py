"""An error bar for |ΔS_M| calibrated on held-out fields, and which field to measure next.

The ensemble's spread is not an error bar: its members share the bias of the
method (on the issue's wide-gap magnet the 10 members were all 6–9 % high, their
spread ±1 %). The evidence here is held out instead:

1. For each interior measured field F_i (up to ``MAX_FOLDS``, evenly spread),
   the reference configuration (the best stored model's: its layers, nodes,
   learning rate, batch, X2 transform; Adam for the whole epoch budget, as the
   refinement trains it, within its step budget) is retrained WITHOUT that field:
   the fold model. The folds train side by side in one graph, each on its own rows.
2. Carried through ∂M/∂T and the H integral: D_i(T) = |ΔS_M| of the fold model
   over [F_{i-1}, F_{i+1}] minus that of the reference model. It is what
   the method gets wrong over that double gap when F_i is missing, as far as
   the reference is right there. A bias the fold and the reference share
   (both carry the same wrong shape across a wide gap) cancels in D_i, so the
   fold is also scored against what was measured at F_i: with the fold's
   misfit e_i(T) = M_fold(T, F_i) − M_measured(T, F_i) (smoothed along T), the
   trapezoid over the three fields gives E_i(T) = |∂e_i/∂T|·(F_{i+1} − F_{i-1})/2
   for the same double gap. The fold's error there is max(|D_i|, E_i).
3. Each gap [F_j, F_{j+1}] of the full data gets the error ε_j(T) of the folds
   whose double gap contains it, scaled to its width by (w_j / W_i)^P_ORDER,
   widths measured in the X2 transform's coordinate (how the networks see X2).
   The folds probe the gaps between fields, not the steps between temperatures: a
   coarse temperature step near a sharp (first-order) transition is an error of
   its own. One more fold, the temperature fold, trains the reference
   configuration on every other temperature of each field's curve; its |ΔS_M|
   minus the reference's over each gap j is τ_j(T), added to ε_j(T). That
   difference is e(2h) − e(h), h the data's temperature step and e(h) ∝ h^T_ORDER
   the error of sampling at h (Richardson), so the data's own error e(h) is the
   difference / (2^T_ORDER − 1): the difference itself at first order.
4. The band of |ΔS_M|(T, ΔH) is CALIBRATION × Σ_j φ_j (ε_j(T) + τ_j(T)), φ_j the part of
   gap j inside [H0, H0 + ΔH] (a plain sum: the errors of neighbouring gaps
   share their sign). CALIBRATION is meant to make it a nominal 90 % interval:
   the ratio |peak error| / (uncalibrated half-width at the peak) was at most
   0.18 on the cases of bench/method.py (well-trained ensembles), but 0.8 on the
   small, briefly trained project of tests/test_suggest.py, where the error
   comes from the fit along T rather than from the field gaps, which the folds
   do not see. CALIBRATION = 1 covers both: conservative (wide) on well-trained
   projects, and still a number set on few cases (see the README). The
   networks' own band is scaled by :func:`network_scale`, set on the family
   benchmark's well-trained projects (their folds' training scatter widens it).
   Below a :func:`low_gap`, where no fold tests anything, the band adds how far
   the answer and another method differ there (:func:`with_spread`: the RBF
   surface, or the networks where the Arrott interpolation answers). Near T_C,
   where the low-field equation of state answers below its top field, the
   terms of the gaps there give way to its own error (:func:`with_low_field`),
   which no measured field removes.
5. The networks' band need not be symmetric (:func:`band_sides`): from a first
   field below ``entropy.ZERO_FIELD_T`` their peak was low on nearly every magnet
   of the family benchmark (the cusp of |ΔS_M| at T_C rounded off), so the band
   reaches further above the answer than below it.

With fewer than 3 fields there is no interior field to hold out: the band is
"not calibrated" and says why (:class:`Calibration`.reason).

Isotherms (X2 the temperature) hold out interior isotherms instead; their
misfit, integrated over the field, gives the band between temperatures
(:func:`calibrate_isotherms`), and the fold on every other field reading the
band of the field steps (:func:`field_fold_error`).

Measuring in the middle of gap j (in the transform's coordinate) replaces its
ε_j by two halves of ε_j·2^-P_ORDER each, so the band at the peak shrinks by
CALIBRATION·φ_j·ε_j(T_peak)·(1 − 2^(1−P_ORDER)): :func:`suggestions` ranks
the gaps by that expected reduction over the user's ΔH values.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from mat_interp_core import entropy, isotherms, network

if TYPE_CHECKING:
    from mat_interp_core.projects import ProjectHandle

__all__ = ["COVERAGE", "CALIBRATION", "NETWORK_CALIBRATION", "LOW_GAP_T", "low_gap", "network_scale", "NETWORK_SIDES", "CUSP_SIDES", "LOW_FIELD_BAND", "band_sides", "with_low_field", "gap_warning", "cusp_warning", "isotherm_warning", "band_warnings", "with_spread", "P_ORDER", "MAX_FOLDS", "T_ORDER", "Calibration", "fold_fields", "held_out_values", "train_folds",
           "temperature_fold_rows", "fold_numbers",
           "calibrate", "calibrate_isotherms", "field_fold_error", "band", "suggestions", "result_suggestions", "suggestion_text", "T_SUGGEST_STEPS", "calibrate_project", "band_wanted", "calibration_done", "calibration_progress",
           "project_calibration", "fold_groups", "measured_error", "stored_folds"]

COVERAGE = 0.9  # nominal coverage of the band
CALIBRATION = 1.0  # see the module's docstring, bench/method.py and the README
NETWORK_CALIBRATION = 0.35  # the networks' band without a low gap (network_scale), their isotherms' field fold: README
NETWORK_SIDES = 0.7  # the networks' band, both sides, from a first field >= entropy.ZERO_FIELD_T (band_sides): README
CUSP_SIDES = (0.2, 1.2)  # (below, above) the networks' answer from a first field below it (band_sides): README
LOW_FIELD_BAND = 0.015  # the low-field equation of state's own band where it answers, of its |ΔS_M| (with_low_field): README
LOW_GAP_T = 0.5  # tesla: the narrowest lowest gap counted as one no fold tests inside (low_gap)
P_ORDER = 2.0  # a gap's error grows as its width^P_ORDER (transform coordinate)
MAX_FOLDS = 6  # interior fields held out at most (trained side by side: each costs less than a training)
T_ORDER = 1.0  # the error of sampling at temperature step h grows as h^T_ORDER (conservative: first order)
T_SUGGEST_STEPS = 4  # suggestions: the finer temperatures reach this many measured steps beyond each ΔH's peak
T_FOLD = -99  # the stored trial number of the temperature fold's model
MIN_T_POINTS = 6  # fewer temperatures per field curve (median): no temperature fold
FOLD_PARTS = 2  # the folds are trained in this many groups, which the finishing workers claim one at a time
PROGRESS_SECONDS = 5.0  # how often the folds' training reports its progress

Progress = Callable[[int, int, str], None]


def fold_fields(x2_values: Sequence[float], n: int = MAX_FOLDS, peak: float | None = None) -> list[float]:
    """The interior X2 values held out (up to n, evenly spread; the end fields cannot be interpolated).

    `peak`, for isotherms (X2 the temperature): besides those, up to n // 2 more, the interior isotherms nearest
    the temperature where |ΔS_M| peaks (:func:`isotherms.peak_temperature`). Each gap's band comes from the folds
    at its ends, else from the nearest one: evenly spread folds rarely hold out an isotherm at a sharp peak, the
    one place where the band is read. The held-out scores of ``choice`` stay on the evenly spread ones."""
    from mat_interp_core.baselines import _interior_subset

    values = np.unique(np.asarray(x2_values, dtype=float))
    if values.size < 3:
        return []
    even = [float(v) for v in _interior_subset(values, int(n))]
    if peak is None:
        return even
    interior = values[1:-1]
    near = [float(v) for v in interior[np.argsort(np.abs(interior - peak), kind="stable")[:int(n) // 2]]]
    return sorted(set(even) | set(near))


def temperature_fold_rows(data, every: int = 2) -> np.ndarray | None:
    """Rows of every `every`-th temperature of each field's curve (every other one, 2, is what the temperature fold
    trains on), or None when the curves are too short to thin."""
    x, _ = data.arrays()
    labels = data.set_points.labels
    if np.median(np.bincount(labels)) < MIN_T_POINTS:
        return None
    keep = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        keep[rows[np.argsort(x[rows, 0], kind="stable")][::every]] = True
    return keep


def train_folds(data, params: dict, *, epochs: int, seed: int | None = None, t_fold: bool = True,
                fields: Sequence[float] | None = None, only: Sequence[int] | None = None,
                progress: Progress | None = None,
                on_epoch: Callable[[int, float], None] | None = None) -> list:
    """The configuration `params` trained once per held-out interior field (trial numbers -1, -2, ... in the
    order of `fields`, by default :func:`fold_fields`) and, with `t_fold` and curves long enough, on every other temperature
    (:data:`T_FOLD`): :class:`models.TrainedModel` with Y in the user's units.

    All of them (or the trial numbers in `only`) train side by side in one graph (:func:`training.train_configs`),
    each on its own rows, within the refinement's step budget (:func:`refine.refine_epochs`).
    `progress(done, total, message)` counts epochs (every few seconds); `on_epoch(epoch, loss)` is called after
    each epoch and may raise (a stop request) to end the training.
    """
    from mat_interp_core import models, refine, training

    x, _ = data.arrays()
    fields = fold_fields(data.x2_values) if fields is None else list(fields)
    rows = [~data.set_points.mask(x2) for x2 in fields]
    numbers = [-1 - k for k in range(len(fields))]
    t_rows = temperature_fold_rows(data) if t_fold else None
    if t_rows is not None:
        rows.append(t_rows)
        numbers.append(T_FOLD)
    if only is not None:
        keep = [k for k, n in enumerate(numbers) if n in set(only)]
        rows, numbers = [rows[k] for k in keep], [numbers[k] for k in keep]
    if not rows:
        return []
    run_epochs = refine.refine_epochs(epochs, len(x), params["batch"])
    started, told = time.perf_counter(), [time.perf_counter()]

    def each_epoch(epoch: int, loss: float) -> None:
        if on_epoch is not None:
            on_epoch(epoch, loss)
        now = time.perf_counter()
        if progress is not None and (now - told[0] >= PROGRESS_SECONDS or epoch + 1 == run_epochs):
            told[0] = now
            progress(epoch + 1, run_epochs, f"{len(rows)} held-out folds: epoch {epoch + 1} of {run_epochs} "
                                            f"({now - started:.0f} s)")

    trained, mean, std = training.train_configs(data, params, epochs=run_epochs, patience=run_epochs,
                                                seeds=[seed] * len(rows), rows=rows, on_epoch=each_epoch)
    return [models.TrainedModel(n, float("nan"), network.with_target_scaling(net, mean, std))
            for n, (net, _) in zip(numbers, trained)]


def low_gap(fields_tesla) -> bool:
    """Whether the two lowest fields leave a wide gap just above zero field: at least :data:`LOW_GAP_T` wide,
    from below a fifth of its top (a first field at 0 T or remanent, or an order of magnitude below the next).

    M(H) is steepest there (∝ H^{1/3} at T_C in mean field) and no fold tests inside it: the fold that leaves
    out the second field tests one point at the gap's top, twice as far from the lowest field."""
    f = np.unique(np.asarray(fields_tesla, dtype=float))
    return bool(f.size >= 2 and f[1] - f[0] >= LOW_GAP_T and f[0] <= f[1] / 5)


def network_scale(fields_tesla) -> float:
    """The factor on the networks' band (:class:`Calibration`.scale). Their folds are retrained networks, so a
    fold differs from the reference by the training's own scatter besides the gap's error, and the band at
    CALIBRATION is wide (its errors a small fraction of it): :data:`NETWORK_CALIBRATION` makes it a
    90 % interval on the family's cases without a :func:`low_gap`. Below such a gap the folds do not see the
    networks' largest error: 1 (the band still misses there; README)."""
    return 1.0 if low_gap(fields_tesla) else NETWORK_CALIBRATION


def band_sides(fields_tesla) -> tuple[float, float]:
    """(below, above): the factors on the networks' band under and over their answer (:class:`Calibration`.sides).

    From a first field below ``entropy.ZERO_FIELD_T`` (0 T or remanent) S(T, H0) has a kink at T_C and |ΔS_M|(T)
    a cusp, which a smooth fit of the measured temperatures rounds off: on the family benchmark nearly every such
    peak was low, so the band reaches :data:`CUSP_SIDES` times its width above the answer and a fraction of it
    below. From a higher first field, without a :func:`low_gap`, the networks' errors had either sign and were
    smaller than their band: :data:`NETWORK_SIDES` both ways. Below a low gap, where the band misses most, it is
    kept whole. The factors were picked on stored family projects and checked on retrained projects and on a seed
    never trained before (README, fidelity section). Where the low-field equation of state answers near T_C the
    cusp is kept and :func:`with_low_field` makes the sides symmetric again."""
    f = np.unique(np.asarray(fields_tesla, dtype=float))
    if f.size == 0 or low_gap(f):
        return (1.0, 1.0)
    if abs(f[0]) < entropy.ZERO_FIELD_T:
        return CUSP_SIDES
    return (NETWORK_SIDES, NETWORK_SIDES)


def gap_warning(cal: Calibration) -> str:
    """What the band cannot see, in one sentence: the :func:`low_gap` of M(T) data ("" when there is none)."""
    if not cal.calibrated or cal.isotherm or not low_gap(cal.fields_t):
        return ""
    lo, hi = cal.fields_t[:2]
    if cal.low_field:
        return (f"no fold tests inside the gap from {lo:.3g} to {hi:.3g} T above zero field: near T_C the equation "
                "of state fitted to the readings answers across it, and the band there is its own error on the "
                "family benchmark; away from T_C |ΔS_M| may be off by more than the band: measure a field inside it")
    widened = ("" if cal.spread is None else ", so the band adds half of how far the networks and an "
               "interpolation differ there")
    return (f"no fold tests inside the gap from {lo:.3g} to {hi:.3g} T above zero field{widened}; |ΔS_M| may be "
            "off by more than the band there (by tens of per cent on some magnets of the family benchmark): "
            "measure a field inside it")


def cusp_warning(cal: Calibration, t_step: float) -> str:
    """What the band cannot see from a first field below :data:`entropy.ZERO_FIELD_T` ("" otherwise; M(T) data).

    S(T, H0 ≈ 0) has a kink at T_C, so the exact |ΔS_M|(T) has a cusp there; any smooth fit of temperatures
    `t_step` apart rounds it off, and the held-out folds, fitted as smoothly, do not see it. On the family
    benchmark (bench/family.py's sampled references: the exact magnet at every field, known only at the data's
    temperatures, a cubic spline between them) that rounding alone lowers the peak by a few per cent at ΔH = 1 T
    (the figures the sentence quotes: README, session 16)."""
    if (cal.isotherm or cal.low_field or cal.fields_t.size == 0 or cal.fields_t[0] >= entropy.ZERO_FIELD_T
            or not t_step > 0):
        return ""
    skew = (", so the band reaches further above the answer than below it"
            if cal.sides[1] > cal.sides[0] else "")
    return (f"from a first field of {cal.fields_t[0]:.3g} T, |ΔS_M|(T) has a cusp at T_C that data {t_step:.3g} K "
            "apart cannot resolve and no held-out fold sees: the peak may be higher than shown (at ΔH = 1 T by 2 % in "
            f"the median and up to 12 % on the family benchmark's magnets, less at larger ΔH){skew}; finer "
            "temperature steps around T_C resolve it")


def isotherm_warning(cal: Calibration) -> str:
    """What an isotherm band cannot see ("" for M(T) data or no band). The held-out isotherms (between
    temperatures) and the field fold (:func:`field_fold_error`, the field steps) cover both directions, but a
    sharp peak between two isotherms is seen only as far as a held-out isotherm's misfit shows it: on the family
    benchmark's isotherm cases the band covered 25 of 30 peaks, and the five misses were one first-order magnet
    with isotherms 1.8 K apart (README, session 18)."""
    if not cal.isotherm or not cal.calibrated:
        return ""
    return ("this band comes from held-out isotherms (between temperatures) and from a fit on every other field "
            "reading (the field steps); a sharp peak that falls between two isotherms can be off by more than it (on "
            "the family benchmark, a first-order magnet with isotherms 1.8 K apart was off by up to 1.4 times the "
            "half-width): isotherms closer together around the peak shrink that")


def band_warnings(cal: Calibration, t_step: float) -> tuple[str, ...]:
    """Every sentence on what the band cannot see (:func:`gap_warning`, :func:`cusp_warning`,
    :func:`isotherm_warning`), for both front ends."""
    return tuple(w for w in (gap_warning(cal), cusp_warning(cal, t_step), isotherm_warning(cal)) if w)


@dataclass
class Calibration:
    """Held-out evidence of one project: per-gap |ΔS_M| errors on a temperature axis (or why there is none)."""

    fields_t: np.ndarray  # measured fields, tesla, ascending
    fields_x2: np.ndarray  # the same in the data's X2 unit
    t_axis: np.ndarray  # K
    gap_error: np.ndarray  # (n_fields - 1, n_T): ε_j(T), J/(kg·K), uncalibrated
    u: np.ndarray  # the fields in the transform's coordinate
    transform: tuple[str, float]  # (kind, scale) of the coordinate
    reason: str = ""  # non-empty: not calibrated, and why
    folds: dict = field(default_factory=dict)  # held-out X2 -> D_i(T)
    t_error: np.ndarray | None = None  # (n_fields - 1, n_T): τ_j(T) of the temperature fold, uncalibrated
    temperatures: np.ndarray | None = None  # isotherms: their temperatures (the rows are steps of a field grid)
    scale: float = 1.0  # times CALIBRATION: network_scale when the networks' folds made it
    spread: pd.DataFrame | None = None  # below a low_gap: T_K, dH_T, dS (J/(kg·K)) added to the band (with_spread)
    sides: tuple[float, float] = (1.0, 1.0)  # factors below and above the answer: band_sides when the networks' folds made it
    low_field: bool = False  # the answer's low-field part near T_C is the equation of state's (with_low_field)
    own: pd.DataFrame | None = None  # there: T_K, dH_T, dS, its own error, which no measured field removes

    @property
    def isotherm(self) -> bool:
        """Whether the band is between isotherms' temperatures (:func:`calibrate_isotherms`)."""
        return self.temperatures is not None

    def total(self) -> np.ndarray:
        """ε_j(T) + τ_j(T): each gap's whole uncalibrated error."""
        return self.gap_error if self.t_error is None else self.gap_error + self.t_error

    @property
    def calibrated(self) -> bool:
        return not self.reason


def not_calibrated(reason: str, x2_values, h_unit: str) -> Calibration:
    """A Calibration that says why there is no band (every band value NaN)."""
    x2 = np.unique(np.asarray(x2_values, dtype=float))
    return Calibration(entropy.to_tesla(x2, h_unit), x2, np.zeros(0), np.zeros((max(0, x2.size - 1), 0)),
                       x2, ("linear", 1.0), reason)


def _to_u(kind: str, scale: float, x2: np.ndarray) -> np.ndarray:
    """The X2 transform's coordinate (as :class:`network` applies it) in numpy."""
    v = np.asarray(x2, dtype=float) / scale
    if kind == "asinh":
        return np.arcsinh(v)
    if kind == "cbrt":
        return np.cbrt(v)
    return v


def _from_u(kind: str, scale: float, u: float) -> float:
    if kind == "asinh":
        return float(np.sinh(u) * scale)
    if kind == "cbrt":
        return float(u**3 * scale)
    return float(u * scale)


def calibrate(reference, folds: dict[float, object], x1: np.ndarray, x2: np.ndarray, units: entropy.MagnetUnits,
              *, t_axis: np.ndarray, transform: str = network.DEFAULT_X2_TRANSFORM,
              h_step_t: float = entropy.DEFAULT_H_STEP_T, y: np.ndarray | None = None,
              x2_read: np.ndarray | None = None, t_fold=None, networks: bool = False) -> Calibration:
    """Per-gap errors ε_j(T) from the reference model and its fold models (see the module's docstring).

    x1, x2: the measured temperatures and field set points; with the measured `y` (and the field read-backs
    `x2_read`, when they jitter around the set points) each fold is also scored against the held-out field.
    `t_fold`: the temperature fold's model (see the module's docstring); `networks`: the folds are the networks'
    (the band gets :func:`network_scale`)."""
    x2_values = np.unique(np.asarray(x2, dtype=float))
    if x2_values.size < 3:
        return not_calibrated(f"the data has {x2_values.size} fields: with no interior field to hold out, nothing "
                             "measures how wrong |ΔS_M| is between fields", x2_values, units.h_unit)
    if not folds:
        return not_calibrated("no held-out fold models yet (mat-interp calibrate NAME trains them)", x2_values,
                             units.h_unit)
    factor = float(entropy.to_tesla(1.0, units.h_unit))
    fields_t = x2_values * factor
    kind = transform
    x2_scale = network.x2_transform_scale(kind, x2_values)
    u = _to_u(kind, x2_scale, x2_values)
    t_axis = np.asarray(t_axis, dtype=float)
    kw = dict(t_col="T", h_col="H", m_col="M", **units.kwargs())
    held: dict[int, np.ndarray] = {}
    for x2_i, model in folds.items():
        i = int(np.argmin(np.abs(x2_values - x2_i)))
        if not 0 < i < x2_values.size - 1:
            continue
        lo, hi = fields_t[i - 1], fields_t[i + 1]
        n = max(8, int(math.ceil((hi - lo) / h_step_t)))
        h = np.linspace(lo, hi, n + 1) / factor
        tt, hh = np.meshgrid(t_axis, h)
        table = pd.DataFrame({"T": tt.ravel(), "H": hh.ravel()})
        ds = []
        for m in (model, reference):
            c = entropy.delta_s(table.assign(M=np.asarray(m.predict(tt, hh), float).ravel()), dh_tesla=hi - lo, **kw)
            ds.append(c.sort_values("T_K")["dS_J_per_kgK"].to_numpy())
        held[i] = np.abs(ds[0] - ds[1])
        if y is not None:
            held[i] = np.maximum(held[i], measured_error(model, x1, x2, y, x2_read, x2_values[i], units, t_axis,
                                                          (hi - lo) / 2))
    if not held:
        return not_calibrated("none of the held-out fields is an interior field of this data", x2_values, units.h_unit)
    gaps = np.zeros((x2_values.size - 1, t_axis.size))
    for j in range(x2_values.size - 1):
        w = u[j + 1] - u[j]
        near = [i for i in (j, j + 1) if i in held] or [min(held, key=lambda i: abs(i - j - 0.5))]
        gaps[j] = np.max([held[i] * (w / (u[i + 1] - u[i - 1])) ** P_ORDER for i in near], axis=0)
    t_error = None
    if t_fold is not None:
        t_error = np.zeros_like(gaps)
        for j in range(x2_values.size - 1):
            lo, hi = fields_t[j], fields_t[j + 1]
            h = np.linspace(lo, hi, max(8, int(math.ceil((hi - lo) / h_step_t))) + 1) / factor
            tt, hh = np.meshgrid(t_axis, h)
            table = pd.DataFrame({"T": tt.ravel(), "H": hh.ravel()})
            ds = [entropy.delta_s(table.assign(M=np.asarray(m.predict(tt, hh), float).ravel()), dh_tesla=hi - lo,
                                  **kw).sort_values("T_K")["dS_J_per_kgK"].to_numpy() for m in (t_fold, reference)]
            t_error[j] = np.abs(ds[0] - ds[1]) / (2.0 ** T_ORDER - 1.0)
    return Calibration(fields_t, x2_values, t_axis, gaps, u, (kind, x2_scale),
                       folds={float(x2_values[i]): d for i, d in held.items()}, t_error=t_error,
                       scale=network_scale(fields_t) if networks else 1.0,
                       sides=band_sides(fields_t) if networks else (1.0, 1.0))


ISOTHERM_FIELD_POINTS = 201  # the isotherm band's field grid


def calibrate_isotherms(folds: dict[float, object], data, units: entropy.MagnetUnits, *,
                        t_axis: np.ndarray, reference=None, field_fold=None, networks: bool = False) -> Calibration:
    """The band of isotherm data (X1 the field, X2 the temperature) from its held-out isotherms.

    The gaps are between temperatures here, and the fields are dense. Each fold i (the interior isotherm T_i
    left out) misses the measured M(H) at T_i, which off-sets |ΔS_M| integrated up to H by about I_i(H)
    (:func:`isotherms.held_out_integral`, over a double gap). A temperature between T_j and T_{j+1} gets the
    largest max_{H' ≤ H}|I_i(H')| of the folds at T_j and T_{j+1} (else of the nearest fold), scaled to its gap
    by w_j / ((T_{i+1} − T_{i−1})/2): the misfit in the middle of a gap grows as its width², the slope error
    as its width. The rows of the returned Calibration are the steps of a field grid from the lowest common
    field, each holding what that step adds to the running maximum, so :func:`band` sums them up to
    H0 + ΔH. :func:`suggestions` ranks the temperature gaps.

    The held-out isotherms see the temperature direction only. The field steps within each isotherm are the
    other: `field_fold`, the `reference` fitted on every other field reading of each isotherm (the fold
    :func:`temperature_fold_rows` makes, X1 being the field here), gives :func:`field_fold_error`, added as
    the Calibration's t_error (what a finer field step, not another isotherm, shrinks). `networks`: the folds
    are retrained networks, whose field fold differs from the reference mostly by the training's own scatter at
    the field steps labs use: that part gets :data:`NETWORK_CALIBRATION`, as the networks' band of M(T) data;
    the held-out isotherms' part, which alone sees a peak between two isotherms, is kept whole (README)."""
    temps = np.asarray(data.x2_values, dtype=float)
    lo, hi = (float(entropy.to_tesla(v, units.h_unit)) for v in isotherms.field_range(data))
    grid = np.linspace(lo, hi, ISOTHERM_FIELD_POINTS)
    grid_x2 = grid / float(entropy.to_tesla(1.0, units.h_unit))
    if temps.size < 3:
        return not_calibrated(f"the data has {temps.size} isotherms: with no interior isotherm to hold out, nothing "
                              "measures how wrong |ΔS_M| is between them", grid_x2, units.h_unit)
    held: dict[int, np.ndarray] = {}
    for x2_i, model in folds.items():
        i = int(np.argmin(np.abs(temps - x2_i)))
        if 0 < i < temps.size - 1:
            h_t, running = isotherms.held_out_integral(model, data, units, i)
            r = np.interp(grid, h_t, running)
            held[i] = np.diff(np.maximum.accumulate(np.abs(r - r[0])))
    if not held:
        return not_calibrated("none of the held-out isotherms is an interior one", grid_x2, units.h_unit)
    t_axis = np.asarray(t_axis, dtype=float)
    gap_of_t = _temperature_gaps(temps, t_axis)
    error = np.zeros((grid.size - 1, t_axis.size))
    for j in np.unique(gap_of_t):
        near = [i for i in (j, j + 1) if i in held] or [min(held, key=lambda i: abs(i - j - 0.5))]
        w = temps[j + 1] - temps[j]
        per_gap = np.max([held[i] * (w / ((temps[i + 1] - temps[i - 1]) / 2)) for i in near], axis=0)
        error[:, gap_of_t == j] = per_gap[:, None]
    steps = None
    if reference is not None and field_fold is not None and t_axis.size >= 3:
        steps = field_fold_error(reference, field_fold, grid, t_axis, units)
        steps = steps * NETWORK_CALIBRATION if networks else steps
    return Calibration(grid, grid_x2, t_axis, error, grid, ("linear", 1.0),
                       folds={float(temps[i]): d for i, d in held.items()}, t_error=steps, temperatures=temps)


def field_fold_error(reference, field_fold, grid_t: np.ndarray, t_axis: np.ndarray,
                     units: entropy.MagnetUnits) -> np.ndarray:
    """Isotherms' field-step error, (grid_t.size − 1, t_axis.size) in J/(kg·K): what each step of the field grid
    `grid_t` (tesla) adds to the running maximum over H of |ΔS_M(field_fold) − ΔS_M(reference)|, both
    integrated from the lowest field; `field_fold` saw every other field reading (twice the step h), so by
    Richardson, as for the temperature fold of M(T) data, the data's own error e(h) is that difference
    / (2^T_ORDER − 1). Both models predict Y(field in the data's unit, temperature)."""
    hh, tt = np.meshgrid(grid_t / float(entropy.to_tesla(1.0, units.h_unit)), t_axis, indexing="ij")
    diff = np.asarray(field_fold.predict(hh, tt), dtype=float) - np.asarray(reference.predict(hh, tt), dtype=float)
    diff = entropy.to_specific_moment(diff.reshape(hh.shape), units.m_unit, mass_mg=units.mass_mg,
                                      molar_mass_g=units.molar_mass_g)
    slope = np.gradient(diff, t_axis, axis=1)
    steps = np.diff(grid_t)[:, None] * (slope[1:] + slope[:-1]) / 2
    running = np.abs(np.concatenate([np.zeros((1, t_axis.size)), np.cumsum(steps, axis=0)]))
    return np.diff(np.maximum.accumulate(running, axis=0), axis=0) / (2.0 ** T_ORDER - 1.0)


def _temperature_gaps(temps: np.ndarray, t_axis: np.ndarray) -> np.ndarray:
    """For each temperature of `t_axis`, the gap between isotherms it lies in (ends: the first or last gap)."""
    return np.clip(np.searchsorted(temps, t_axis, side="right") - 1, 0, temps.size - 2)


_SMOOTH_POINTS = 5  # running mean along T of a fold's misfit at its held-out field (measurement noise)


def measured_error(model, x1, x2, y, x2_read, field_x2: float, units: entropy.MagnetUnits, t_axis: np.ndarray,
                    half_width_t: float) -> np.ndarray:
    """E_i(T): the fold's misfit at the field it did not see, carried through ∂/∂T and the trapezoid weight of
    that field over the double gap, in J/(kg·K) on `t_axis` (zeros where the field was not measured)."""
    x1 = np.asarray(x1, dtype=float)
    sel = np.isclose(np.asarray(x2, dtype=float), field_x2, rtol=1e-9, atol=0.0)
    if sel.sum() < _SMOOTH_POINTS + 2:
        return np.zeros(t_axis.size)
    h = np.asarray(x2 if x2_read is None else x2_read, dtype=float)[sel]
    order = np.argsort(x1[sel])
    t, h, m = x1[sel][order], h[order], np.asarray(y, dtype=float)[sel][order]
    misfit = entropy.to_specific_moment(np.asarray(model.predict(t, h), dtype=float) - m, units.m_unit,
                                        mass_mg=units.mass_mg, molar_mass_g=units.molar_mass_g)
    misfit = np.convolve(misfit, np.ones(_SMOOTH_POINTS) / _SMOOTH_POINTS, mode="same")
    keep = slice(_SMOOTH_POINTS // 2, t.size - _SMOOTH_POINTS // 2)  # the running mean's ends are biased
    t, misfit = t[keep], misfit[keep]
    t, first = np.unique(t, return_index=True)
    if t.size < 3:
        return np.zeros(t_axis.size)
    slope = np.abs(np.gradient(misfit[first], t))
    inside = (t_axis >= t[0]) & (t_axis <= t[-1])
    return np.where(inside, np.interp(t_axis, t, slope), 0.0) * half_width_t


def _fractions(cal: Calibration, dh: float) -> np.ndarray:
    """φ_j: the part of each gap inside [H0, H0 + ΔH]."""
    top = cal.fields_t[0] + float(dh)
    lo, hi = cal.fields_t[:-1], cal.fields_t[1:]
    return np.clip((top - lo) / (hi - lo), 0.0, 1.0)


def band(cal: Calibration, dh_tesla: Sequence[float], t: np.ndarray | None = None,
         factor: float = CALIBRATION) -> pd.DataFrame:
    """The nominal 90 % band: columns T_K, dH_T, dS_below and dS_above (how far it reaches under and over the
    answer, :class:`Calibration`.sides) and dS_band, their mean (the half-width); NaN when not calibrated."""
    t_out = cal.t_axis if t is None else np.asarray(t, dtype=float)
    rows = []
    for dh in np.atleast_1d(np.asarray(dh_tesla, dtype=float)):
        if cal.calibrated:
            core = factor * cal.scale * (_fractions(cal, dh)[:, None] * cal.total()).sum(axis=0)
            core = np.interp(t_out, cal.t_axis, core)
            added = _added_at(cal, dh, t_out)
            below, above = cal.sides[0] * core + added, cal.sides[1] * core + added
        else:
            below = above = np.full(t_out.size, np.nan)
        rows.append(pd.DataFrame({"T_K": t_out, "dH_T": float(dh), "dS_band": 0.5 * (below + above),
                                  "dS_below": below, "dS_above": above}))
    return pd.concat(rows, ignore_index=True)


def with_spread(cal: Calibration, answer: pd.DataFrame, other: pd.DataFrame, weight: float) -> Calibration:
    """`cal` with the spread of two methods inside a :func:`low_gap` added to its band: `weight` × |ΔS_answer −
    ΔS_other| at each (T, ΔH) of their curves (columns T_K, dH_T, dS_J_per_kgK, on the same grid).

    No fold tests inside such a gap. There the networks and the RBF surface err in opposite directions on
    most magnets of the family benchmark, and where the Arrott interpolation answers the networks are its
    farthest alternative (README): half their difference, added to the answer's fold band, covered the exact
    |ΔS_M| on the family's low-gap cases where the fold band alone did not. Without a low gap (or a band),
    `cal` unchanged."""
    if not cal.calibrated or cal.isotherm or not low_gap(cal.fields_t):
        return cal
    both = answer.merge(other, on=["T_K", "dH_T"], suffixes=("", "_other"))
    spread = both[["T_K", "dH_T"]].assign(dS=weight * (both["dS_J_per_kgK"] - both["dS_J_per_kgK_other"]).abs())
    return replace(cal, spread=spread)


def with_low_field(cal: Calibration, low=None, curves: pd.DataFrame | None = None) -> Calibration:
    """`cal` for an answer whose low-field part near T_C comes from the equation of state fitted to the readings
    (`low`, a ``lowfield.LowField``; `curves`: the answer's, columns T_K and dH_T): that part no longer rounds off
    the cusp from a first field below ``entropy.ZERO_FIELD_T``, so the networks' band is symmetric there too
    (:data:`NETWORK_SIDES`, as from a higher first field; README, fidelity: session 26) and :func:`cusp_warning`
    has nothing to say.

    Where the equation of state answers, the folds of the gaps below its top field test the networks, not it:
    their terms give way to its own error, :data:`LOW_FIELD_BAND` of its |ΔS_M| from H0, with its weight (1
    within a quarter of its window of T_C, tapering to 0 at half of it), in every layout (README, fidelity:
    sessions 27 and 28), so the band and :func:`suggestions` follow what answers."""
    sides = (NETWORK_SIDES, NETWORK_SIDES) if cal.sides == CUSP_SIDES else cal.sides
    cal = replace(cal, sides=sides, low_field=True)
    if low is None or curves is None or not cal.calibrated or cal.isotherm:
        return cal
    keep = 1.0 - low.weight(cal.t_axis)
    below = cal.fields_t[1:] <= low.top + 1e-9
    gap_error = np.where(below[:, None], cal.gap_error * keep, cal.gap_error)
    t_error = None if cal.t_error is None else np.where(below[:, None], cal.t_error * keep, cal.t_error)
    grid = curves[["T_K", "dH_T"]].drop_duplicates()
    t, dh = grid["T_K"].to_numpy(float), grid["dH_T"].to_numpy(float)
    ds = np.zeros(t.size)
    for value in np.unique(dh):
        at = dh == value
        ds[at] = low.delta_s(t[at], low.h0 + min(float(value), low.top - low.h0))
    own = grid.assign(dS=LOW_FIELD_BAND * low.weight(t) * ds)
    return replace(cal, gap_error=gap_error, t_error=t_error, own=own)


def _term_at(term: pd.DataFrame | None, dh: float, t: np.ndarray) -> np.ndarray:
    """A band term of columns T_K, dH_T, dS (:class:`Calibration`.spread or .own) at ΔH = `dh` on `t` (0 where
    there is none)."""
    if term is None:
        return np.zeros(np.shape(t))
    part = term[np.isclose(term["dH_T"], dh)].sort_values("T_K")
    if part.empty:
        return np.zeros(np.shape(t))
    return np.interp(t, part["T_K"], part["dS"])


def _added_at(cal: Calibration, dh: float, t: np.ndarray) -> np.ndarray:
    """What the band adds to the folds' terms at ΔH = `dh` on `t`: the :func:`with_spread` term and the
    equation of state's own (:func:`with_low_field`)."""
    return _term_at(cal.spread, dh, t) + _term_at(cal.own, dh, t)


def suggestions(cal: Calibration, dh_tesla: Sequence[float], t_peak: Sequence[float] | None = None,
                factor: float = CALIBRATION, t_step: float = 0.0) -> pd.DataFrame:
    """What to measure next, best first: the X2 values (one per gap, its middle in the transform's coordinate)
    and, for M(T) data with a temperature fold and their temperature step `t_step` (K), the temperatures
    between the readings around the peaks, ranked by how much each would shrink the band at the |ΔS_M| peak.

    Columns: x2 (the data's unit), gap_from, gap_to (NaN on the temperature row), t_from, t_to, t_step (K; NaN on
    the field rows: measure every field again at t_step from t_from to t_to), reduction (J/(kg·K), the mean over
    the ΔH values of the band's expected decrease at the peak), reduction_pct (of the mean band there).
    `t_peak`: the peak temperature per ΔH (default: where the band is widest). A field in the middle of gap j
    leaves two halves of ε_j·2^-P_ORDER; halving the temperature step within :data:`T_SUGGEST_STEPS` steps of
    every ΔH's peak leaves 2^-T_ORDER of τ_j there (the temperature fold's Richardson estimate). Isotherms: the
    temperatures, one per gap between isotherms (:func:`_isotherm_suggestions`)."""
    cols = ["x2", "gap_from", "gap_to", "t_from", "t_to", "t_step", "reduction", "reduction_pct"]
    if not cal.calibrated:
        return pd.DataFrame(columns=cols)
    dhs = np.atleast_1d(np.asarray(dh_tesla, dtype=float))
    if cal.isotherm:
        return _isotherm_suggestions(cal, dhs, factor, cols)
    factor = factor * cal.scale * 0.5 * sum(cal.sides)  # of the half-width (band's dS_band)
    gain = 1.0 - 2.0 ** (1.0 - P_ORDER)
    red = np.zeros(cal.gap_error.shape[0])
    red_t, at_t = 0.0, []
    total = 0.0
    for k, dh in enumerate(dhs):
        phi = _fractions(cal, dh)
        per_t = phi[:, None] * cal.gap_error
        if t_peak is None:
            it = int(np.argmax(per_t.sum(axis=0)))
        else:
            it = int(np.argmin(np.abs(cal.t_axis - float(t_peak[k]))))
        red += factor * gain * per_t[:, it] / dhs.size
        if cal.t_error is not None:
            red_t += factor * (1.0 - 2.0 ** -T_ORDER) * float(phi @ cal.t_error[:, it]) / dhs.size
            at_t.append(float(cal.t_axis[it]))
        at = cal.t_axis[it:it + 1]
        red[0] += float(_term_at(cal.spread, dh, at)[0]) / dhs.size  # gone once the low gap is measured
        total += (factor * (phi[:, None] * cal.total())[:, it].sum() + float(_added_at(cal, dh, at)[0])) / dhs.size
    kind, scale = cal.transform
    rows = []
    for j in np.argsort(-red):
        if red[j] <= 0:
            continue
        mid = _from_u(kind, scale, 0.5 * (cal.u[j] + cal.u[j + 1]))
        rows.append({"x2": mid, "gap_from": float(cal.fields_x2[j]), "gap_to": float(cal.fields_x2[j + 1]),
                     "reduction": float(red[j])})
    if red_t > 0 and t_step > 0:
        reach = T_SUGGEST_STEPS * t_step
        lo, hi = max(min(at_t) - reach, float(cal.t_axis[0])), min(max(at_t) + reach, float(cal.t_axis[-1]))
        rows.append({"t_from": round(lo, 1), "t_to": round(hi, 1), "t_step": float(f"{t_step / 2:.2g}"),
                     "reduction": red_t})
    table = pd.DataFrame(rows, columns=cols).sort_values("reduction", ascending=False, kind="stable")
    table["reduction_pct"] = 100 * table["reduction"] / total if total > 0 else 0.0
    return table.reset_index(drop=True).astype(float)


def result_suggestions(result) -> pd.DataFrame:
    """:func:`suggestions` for an |ΔS_M| result with its band (``simulate.with_band``): at the result's ΔH values
    and peak temperatures, the temperature row at the data's own step. The one ranking `suggest`, the Entropy
    page and the benches show."""
    return suggestions(result.calibration, list(result.figures["dH_T"]), list(result.figures["T_peak_K"]),
                       t_step=result.data_t_step)


def suggestion_text(table: pd.DataFrame, x2_unit: str) -> list[str]:
    """One line per row of :func:`suggestions` saying what to measure (`x2_unit`: the data's X2 unit, "K" for
    isotherms), for both front ends."""
    lines = []
    for row in table.itertuples():
        if np.isfinite(row.t_step):
            lines.append(f"every field again, every {row.t_step:g} K from {row.t_from:g} to {row.t_to:g} K")
        else:  # a field; an isotherm's temperature when x2_unit is "K"
            lines.append(f"{row.x2:.4g} {x2_unit} (between {row.gap_from:g} and {row.gap_to:g})")
    return lines


def _isotherm_suggestions(cal: Calibration, dhs: np.ndarray, factor: float, cols: list[str]) -> pd.DataFrame:
    """Isotherms: the temperatures (the middle of a gap between isotherms) whose measurement would shrink the band
    the most where it is widest in that gap. The band there scales with the gap's width
    (:func:`calibrate_isotherms`), so an isotherm in the middle halves it; reduction_pct is of the band at its
    widest over the whole temperature range (means over the ΔH values). The field-step part of the band
    (:func:`field_fold_error`) is not counted: another isotherm does not shrink it."""
    temps = cal.temperatures
    half = band(replace(cal, t_error=None), dhs, factor=factor).assign(gap=np.tile(_temperature_gaps(temps, cal.t_axis), dhs.size))
    widest = float(half.groupby("dH_T")["dS_band"].max().mean())
    red = np.zeros(temps.size - 1)
    per_gap = 0.5 * half.groupby(["gap", "dH_T"])["dS_band"].max().groupby("gap").mean()
    red[per_gap.index.to_numpy(dtype=int)] = per_gap.to_numpy()
    rows = [{"x2": float((temps[j] + temps[j + 1]) / 2), "gap_from": float(temps[j]), "gap_to": float(temps[j + 1]),
             "reduction": float(red[j]), "reduction_pct": float(100 * red[j] / widest) if widest > 0 else 0.0}
            for j in np.argsort(-red) if red[j] > 0]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- a project's folds, stored


def _fold_plan(project: ProjectHandle):
    """(project, data, reference trial, its params, epochs, settings that identify the folds)."""
    from mat_interp_core import models, projects, refine
    data = project.data
    values = models.values(project)
    ranked = models.ranked(project, values)
    if not ranked:
        raise projects.ProjectError(f"project {project.name!r} has no finished trial with a model yet; train it first")
    study = project.study()
    trial = next(t for t in project.trials(max_age=project.TRIALS_MAX_AGE_S) if t.number == ranked[0])
    params = project.space.params_of(trial)
    if "refined" in trial.user_attrs:  # the reference was trained the refinement's way: so are its folds
        solver = trial.user_attrs["refined"].get("solver", refine.DEFAULT_SOLVER)
        if solver != "trial":
            params["solver"] = solver
    _, _, epochs = refine.plan(project.space)
    settings = {"reference": int(trial.number), "value": float(values[trial.number]), "epochs": int(epochs),
                "folds": held_out_values(project), "params": params,
                "t_fold": temperature_fold_rows(data) is not None, "training": "joint"}
    return project, data, study, trial, params, epochs, settings


def held_out_values(project: ProjectHandle) -> list[float]:
    """The X2 values a project's folds leave out (:func:`fold_fields`; isotherms: half of them at the peak)."""
    data = project.data
    peak = isotherms.peak_temperature(data) if isotherms.is_isotherm(project.units) else None
    return fold_fields(data.x2_values, peak=peak)


def fold_numbers(settings: dict) -> list[int]:
    """The stored trial numbers of the fold models a calibration plan has: -1, -2, ... and T_FOLD."""
    return [-1 - k for k in range(len(settings["folds"]))] + ([T_FOLD] if settings["t_fold"] else [])


def fold_groups(settings: dict) -> list[list[int]]:
    """The fold numbers in the FOLD_PARTS groups that processes claim (every FOLD_PARTS-th one)."""
    numbers = fold_numbers(settings)
    return [numbers[g::FOLD_PARTS] for g in range(FOLD_PARTS) if numbers[g::FOLD_PARTS]]


def _mark(settings: dict) -> str:
    """What a stored group records (study attribute ``folds_G``): the plan it was trained for."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _stored_covers(stored: dict | None, settings: dict) -> bool:
    """Whether the stored band's folds (study attribute ``calibration``) serve the plan `settings`: the same plan,
    or the same one trained for more epochs (folds trained before the default budget was halved stay), the rule
    :func:`refine.covers` applies to refined trials."""
    from mat_interp_core import refine

    return refine.covers(stored, settings)


def calibration_progress(project: ProjectHandle) -> dict:
    """The band's folds: groups done, total, running (claimed now), fraction and eta_s, as
    :func:`refine.refine_progress` counts the refinement (a group in training counts its epochs)."""
    from mat_interp_core import refine

    out = {"done": 0.0, "total": 0, "running": 0, "fraction": 1.0, "eta_s": None}
    try:
        _, _, study, trial, _, _, settings = _fold_plan(project)
    except Exception:  # noqa: BLE001 - no model yet: nothing to show
        return out
    if not settings["folds"] or ("calibration" not in study.user_attrs and not band_wanted(project)):
        return out
    groups, attrs, mark, now = fold_groups(settings), study.user_attrs, _mark(settings), time.time()
    out["total"] = len(groups)
    if _stored_covers(attrs.get("calibration"), settings):
        out["done"] = float(len(groups))
        return out
    stored = sum(attrs.get(f"folds_{g}") == mark for g in range(len(groups)))
    claims = [c for g in range(len(groups)) if attrs.get(f"folds_{g}") != mark
              for c in [trial.user_attrs.get(f"calibrating_{g}")]
              if c and c.get("total") and now - float(c.get("at", 0)) < refine.CLAIM_STALE_SECONDS]
    partial = sum(c["done"] / c["total"] for c in claims)
    out.update(done=stored + partial, running=len(claims), fraction=(stored + partial) / len(groups))
    left = [c["elapsed"] * (c["total"] - c["done"]) / c["done"] for c in claims if c.get("done")]
    if left and stored + len(claims) == len(groups):  # every group is stored or in training
        out["eta_s"] = max(left)
    return out


def calibrate_project(project: ProjectHandle, *, progress: Progress | None = None, force: bool = False,
                      slot: int = 0, stop: threading.Event | None = None) -> bool:
    """Train and store the held-out fold models of the project's best model (see the module's docstring).

    Returns False when nothing was to do: fewer than 3 fields (no interior field), or folds stored for the
    current best model already. The fold models are stored as models with trial numbers -1, -2, ... and
    T_FOLD (never part of the ensemble) and the plan as the study's user attribute ``calibration``, set once
    every fold is stored.

    The folds are trained in FOLD_PARTS groups: each process claims a group (the reference trial's attribute
    ``calibrating_G``, as the refinement claims configurations), trains it, stores its models and marks it
    (study attribute ``folds_G``), so the finishing workers share them (`slot` makes them start on different
    groups); a group claimed by a live process is left to it, one whose process died is taken over. `stop` set,
    or the project's stop request, ends the group in training within an epoch (training.StopRequested).
    """
    from mat_interp_core import models, optuna_rdb, projects, refine, storage, training

    _, data, study, trial, params, epochs, settings = _fold_plan(project)
    if not settings["folds"]:
        return False
    if not force and _stored_covers(study.user_attrs.get("calibration"), settings):
        return False
    mark, groups = _mark(settings), fold_groups(settings)
    run_epochs = refine.refine_epochs(epochs, len(data.arrays()[1]), params["batch"])
    seed = None if project.space.seed is None else int(project.space.seed) + trial.number
    trial_id, worker = optuna_rdb.trial_id(trial), f"{socket.gethostname()}:{os.getpid()}"
    trained = False
    for g in [(slot + k) % len(groups) for k in range(len(groups))]:
        if not force and project.study().user_attrs.get(f"folds_{g}") == mark:
            continue  # stored already (by this process or another)
        key = f"calibrating_{g}"
        if not refine.claim(project.url, trial_id, worker, {"folds": g}, 0, 0, key=key):
            continue  # another live process trains it
        if not force and project.study().user_attrs.get(f"folds_{g}") == mark:  # finished while we claimed
            refine.release(project.url, trial_id, worker, key=key)
            continue
        checked, started = [time.monotonic()], time.perf_counter()

        def on_epoch(epoch: int, _loss: float) -> None:
            if stop is not None and stop.is_set():
                raise training.StopRequested("stopped by request while training the held-out folds")
            if time.monotonic() - checked[0] >= refine.CLAIM_REFRESH_SECONDS:
                checked[0] = time.monotonic()
                if projects.stop_requested(project):
                    raise training.StopRequested("stopped by request while training the held-out folds")
                refine.claim(project.url, trial_id, worker, {"folds": g}, epoch + 1, run_epochs, started=started,
                             key=key)

        try:
            folds = train_folds(data, params, epochs=epochs, seed=seed, t_fold=settings["t_fold"],
                                fields=settings["folds"], only=groups[g],
                                progress=progress, on_epoch=on_epoch)
            for fold in folds:
                models.save(project, fold.trial_number, 0.0, fold.model, 0.0, 1.0)
            storage.retry_conflicts(lambda: study.set_user_attr(f"folds_{g}", mark))
            trained = True
        finally:
            refine.release(project.url, trial_id, worker, key=key)
    marks = project.study().user_attrs
    if all(marks.get(f"folds_{g}") == mark for g in range(len(groups))):  # every group stored: the band is ready
        storage.retry_conflicts(lambda: study.set_user_attr("calibration", settings))
    return trained


def band_wanted(project: ProjectHandle) -> bool:
    """Whether the steps after the search train the band's folds: the data is magnetisation M(T, H), as the Data
    page's "This is magnetisation" says, or as the stored units (else the column headers) name a moment and a
    field unit. Other data (an ARPES map, a resistance) never gives |ΔS_M|, so its default path does not train
    networks for that band; `mat-interp calibrate` trains them on request."""
    from mat_interp_core import readers

    units = dict(project.units or {})
    if "magnetisation" in units:
        return bool(units["magnetisation"])
    field = units.get("field", "x2")
    m = units.get("m_unit") or units.get("y") or readers.unit_in_name(project.y_name)
    h = units.get("h_unit") or units.get(field) or readers.unit_in_name(getattr(project, f"{field}_name"))
    return m in entropy.M_UNITS and h in entropy.H_UNITS


def calibration_done(project: ProjectHandle) -> bool:
    """True when the folds of the current best model are stored, or there are none to train (< 3 fields, or
    data that is not magnetisation: :func:`band_wanted`)."""
    _, _, study, _, _, _, settings = _fold_plan(project)
    stored = study.user_attrs.get("calibration")
    return not settings["folds"] or _stored_covers(stored, settings) or (stored is None and not band_wanted(project))


def calibration_status(project: ProjectHandle) -> str:
    """Empty when the stored folds belong to the current best model; else a sentence saying what is missing."""
    try:
        _, data, study, _, _, _, settings = _fold_plan(project)
    except Exception as err:  # noqa: BLE001 - no models yet: the caller says so already
        return str(err)
    if not settings["folds"]:
        return (f"the data has {len(data.x2_values)} fields: with no interior field to hold out, nothing measures "
                "how wrong |ΔS_M| is between fields")
    stored = study.user_attrs.get("calibration")
    if stored is None:
        why = "" if band_wanted(project) else (" (not by default: the project's units do not say its data is "
                                               "magnetisation)")
        return (f"no held-out folds yet{why}: `mat-interp calibrate {project.name}` trains them "
                f"({len(settings['folds']) + settings['t_fold']} networks side by side)")
    if not _stored_covers(stored, settings):
        return ("the held-out folds belong to an earlier best model or an older way of calibrating: "
                f"`mat-interp calibrate {project.name}` renews them")
    return ""


def stored_folds(project: ProjectHandle) -> tuple[object, dict[float, object], object] | None:
    """(reference model, {held-out X2: fold model}, temperature fold or None) of the project's current best model,
    or None when its folds are not stored (:func:`calibration_status` says why)."""
    from mat_interp_core import models

    if calibration_status(project):
        return None
    settings = project.study().user_attrs["calibration"]
    loaded = {m.trial_number: m for m in models.load(project, [settings["reference"]] + fold_numbers(settings))}
    if settings["reference"] not in loaded:
        return None
    folds = {x2: loaded[-1 - k] for k, x2 in enumerate(settings["folds"]) if -1 - k in loaded}
    return loaded[settings["reference"]], folds, loaded.get(T_FOLD)


def project_calibration(project: ProjectHandle, units: entropy.MagnetUnits, t_axis: np.ndarray) -> Calibration:
    """The project's :class:`Calibration` on `t_axis` (not calibrated, with the reason, when it cannot be)."""
    data = project.data
    stored = stored_folds(project)
    if stored is None:
        return not_calibrated(calibration_status(project) or "the best model changed since the folds were trained",
                              data.x2_values, units.h_unit)
    reference, folds, t_fold = stored
    if isotherms.is_isotherm(project.units):
        return calibrate_isotherms(folds, data, units, t_axis=t_axis, reference=reference, field_fold=t_fold,
                                   networks=True)
    x, y = data.arrays()
    settings = project.study().user_attrs["calibration"]
    return calibrate(reference, folds, x[:, 0], data.x2_set_point, units, t_axis=t_axis,
                     transform=settings["params"].get("x2_transform", "linear"), y=y, x2_read=x[:, 1],
                     t_fold=t_fold, networks=True)
