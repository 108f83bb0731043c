"""Which method answers a project's |ΔS_M|, and the held-out evidence behind that choice and its band.

The networks beat interpolation on some magnets and layouts and lose on others; no single method wins a
whole family (bench/family.py). The candidates here are the networks (the project's model set), the
interpolation baselines PCHIP, RBF and the Arrott-plot interpolation (M(T) sweeps only: it needs X2 to be
the field), the mean of the networks and the RBF surface or the Arrott interpolation, and the mean of RBF and
Arrott. Every candidate is
held out the same way, on the interior X2 values the networks' band folds leave out
(:func:`uncertainty.fold_fields`):

* the networks by their stored fold models (trained without that X2, :mod:`uncertainty`);
* a baseline by itself fitted without that X2 (cheap: no training; RBF keeps the settings its full fit chose);
* the mean of two by the mean of their folds.

So each candidate has what :func:`uncertainty.calibrate` needs for a band (a reference, its folds, its
temperature fold), and a held-out score (:func:`held_out_error`): a fold's misfit at the X2 it did not see,
carried to |ΔS_M| where the integral feels it:

* M(T) sweeps at fixed fields: E_i(T) = |∂e_i/∂T|·(F_{i+1} − F_{i−1})/2 (:func:`uncertainty.measured_error`),
  its largest value over T (an offset along T does not change ∂M/∂T; a wrong slope does);
* isotherms at fixed temperatures: |∫ e_i dH| from the lowest field, its largest value over H, over
  (T_{i+1} − T_{i−1})/2 (a wrong M at T_i shifts ∂M/∂T on both sides of it by e_i / ΔT).

The score is the root mean square over the folds, in J/(kg·K). Which candidate answers by default
(:func:`default`: the networks, and for M(T) sweeps below a wide gap just above zero field their mean with RBF
from 0 T, the Arrott interpolation from a higher first field; for M(T) readings that barely scatter the Arrott
interpolation, from 0 T its mean with the networks) was chosen on the family benchmark (README). The
held-out scores see the interior fields only: on the family they did not tell when a baseline or a blend beats
the networks (on a wide gap above zero field, the blends were far better on some magnets and far worse on
others), so for M(T) they are shown, not used.

With no stored folds (a project still training, fewer than 3 X2 values) there is no evidence: the networks
answer, as before the choice existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from mat_interp_core import entropy, isotherms, uncertainty
from mat_interp_core.baselines import LABELS, MAD, make, probe, relative, relative_scatter

__all__ = ["CANDIDATES", "FIELD_ONLY", "candidates", "DEFAULT", "DEFAULT_LOW_GAP", "DEFAULT_WIDE_GAP", "DEFAULT_ISOTHERMS", "DEFAULT_SMOOTH", "DEFAULT_SMOOTH_FROM_ZERO", "SMOOTH_RATIO", "default", "preference", "smoothness", "Method", "Mean", "held_out_error", "baseline_folds",
           "methods", "scores", "pick",
           "label"]

CANDIDATES = ("network", "network+rbf", "network+arrott", "pchip", "rbf", "arrott", "rbf+arrott")
FIELD_ONLY = ("arrott",)  # methods along X2 that need X2 to be the field (not candidates for isotherms)
DEFAULT = "network"  # M(T) sweeps: the networks (README: the family, session 12); a key of CANDIDATES
DEFAULT_LOW_GAP = "network+rbf"  # M(T) sweeps below a wide gap above zero field (uncertainty.low_gap; session 13)
DEFAULT_WIDE_GAP = "arrott"  # ... when that gap's lowest field is not ~0 T (>= entropy.ZERO_FIELD_T; session 25)
DEFAULT_SMOOTH = "arrott"  # M(T) sweeps whose readings barely scatter about their curves (session 31) ...
DEFAULT_SMOOTH_FROM_ZERO = "network+arrott"  # ... from 0 T or a remanent field (< entropy.ZERO_FIELD_T; session 30)
SMOOTH_RATIO = 10.0  # ... than the networks miss them by: by more than this factor (:func:`smoothness`)
DEFAULT_ISOTHERMS = "network"  # isotherms, since the field transform goes on X1 (README: session 19)
_T_POINTS = 400  # temperature axis of the M(T) misfit's slope


class Mean:
    """The plain mean of several predictors (a blend of methods, or of their folds).

    When one part is an ensemble, the blend's ``members`` are each of its members blended with the other
    parts (their mean is the blend), so the members' spread is still reported; the other parts are then
    evaluated once per grid, not once per member."""

    def __init__(self, parts: Sequence) -> None:
        self.parts = list(parts)
        grouped = [p for p in self.parts if len(getattr(p, "members", None) or []) > 1]
        self.members = None
        if len(grouped) == 1:
            rest = _Once(Mean([p for p in self.parts if p is not grouped[0]]))
            self.members = [Mean([m, rest]) for m in grouped[0].members]

    def predict(self, x1, x2) -> np.ndarray:
        return np.mean([np.asarray(m.predict(x1, x2), dtype=float) for m in self.parts], axis=0)


class _Once:
    """A predictor that remembers its last answer (the same grid arrays asked again by every member)."""

    def __init__(self, model) -> None:
        self.model, self._last = model, None

    def predict(self, x1, x2) -> np.ndarray:
        if self._last is None or self._last[0] is not x1 or self._last[1] is not x2:
            self._last = (x1, x2, np.asarray(self.model.predict(x1, x2), dtype=float))
        return self._last[2]


@dataclass
class Method:
    """A candidate: what answers, and what its held-out evidence is made of."""

    key: str
    answer: object  # predicts Y(X1, X2) in the user's units
    reference: object  # the model its folds are the held-out versions of (the band's reference)
    folds: dict  # held-out X2 -> the reference's method fitted without it
    t_fold: object | None  # fitted on every other X1 of each curve
    transform: str  # the X2 coordinate its gaps are scaled in (uncertainty.calibrate)


def candidates(isotherm: bool) -> tuple[str, ...]:
    """The candidate keys for a project's protocol: isotherms' X2 is the temperature, so no Arrott plot."""
    return tuple(k for k in CANDIDATES if not (isotherm and set(k.split("+")) & set(FIELD_ONLY)))


def label(key: str, isotherm: bool = False) -> str:
    """A candidate in words: "networks", "PCHIP along H" ("along T" for isotherms: the baselines work along
    X2), "mean of the networks and RBF surface"."""
    if "+" in key:
        return "mean of the " + " and ".join(label(part, isotherm) for part in key.split("+"))
    text = "networks" if key == "network" else LABELS[key]
    return text.replace("along H", "along T") if isotherm else text


def _fresh(model, which: str, isotherm: bool):
    """An unfitted model like `model` (RBF keeps the settings its full fit chose, the Arrott interpolation its
    treatment of finer readings; :func:`baselines.make`)."""
    fixed = getattr(model, "fixed", None)
    return fixed() if fixed is not None else make(which, isotherm, getattr(model, "h_unit", None))


def baseline_folds(data, which: str, model, values: Sequence[float] | None = None, isotherm: bool = False
                   ) -> tuple[dict[float, object], object]:
    """({held-out X2: the baseline fitted without it}, fitted on every other X1 of each curve or None), the
    same held-out rows the networks' folds leave out (`values`, by default :func:`uncertainty.fold_fields`).
    `model`: the baseline fitted on all the data, as ``make(which, isotherm, h_unit)`` makes it."""
    x, y = data.arrays()
    x1, x2 = x[:, 0], data.x2_set_point
    folds = {}
    for value in uncertainty.fold_fields(data.x2_values) if values is None else values:
        keep = ~data.set_points.mask(value)
        folds[value] = _fresh(model, which, isotherm).fit(x1[keep], x2[keep], y[keep])
    rows = uncertainty.temperature_fold_rows(data)
    return folds, None if rows is None else _fresh(model, which, isotherm).fit(x1[rows], x2[rows], y[rows])


def methods(project, network_model, keys: Sequence[str] | None = None, h_unit: str | None = None
            ) -> dict[str, Method] | None:
    """The candidates `keys` (default: :func:`candidates` of the project's protocol) of a project whose networks' folds are stored (None when they are not);
    `network_model` is the networks' answer (``simulate.model_set``); `h_unit` the field's unit (the Arrott
    interpolation's, ``baselines.make``). A baseline that cannot fit the data is left out."""
    stored = uncertainty.stored_folds(project)
    if stored is None:
        return None
    reference, net_folds, net_t = stored
    data = project.data
    isotherm = isotherms.is_isotherm(project.units)
    keys = candidates(isotherm) if keys is None else keys
    settings = project.study().user_attrs["calibration"]
    transform = settings["params"].get("x2_transform", "linear")
    out = {"network": Method("network", network_model, reference, net_folds, net_t, transform)}
    x, y = data.arrays()
    for which in sorted({part for key in keys for part in key.split("+")} - {"network"}):
        try:
            model = make(which, isotherm, h_unit).fit(x[:, 0], data.x2_set_point, y)
            folds, t_fold = baseline_folds(data, which, model, settings["folds"], isotherm)
            for fitted in [model, *folds.values()] + ([] if t_fold is None else [t_fold]):
                probe(fitted, x[:, 0], data.x2_set_point)
        except (ValueError, np.linalg.LinAlgError):
            continue  # a baseline that cannot fit (or be evaluated on) this data is no candidate
        out[which] = Method(which, model, model, folds, t_fold, "linear")
    for key in keys:
        parts = key.split("+")
        if len(parts) < 2 or not all(p in out for p in parts):
            continue
        members = [out[p] for p in parts]
        shared = set.intersection(*(set(m.folds) for m in members))
        t_folds = [m.t_fold for m in members]
        out[key] = Method(key, Mean([m.answer for m in members]), Mean([m.reference for m in members]),
                          {v: Mean([m.folds[v] for m in members]) for v in shared},
                          None if any(t is None for t in t_folds) else Mean(t_folds), members[0].transform)
    return {k: out[k] for k in keys if k in out}


def held_out_error(folds: dict[float, object], data, units: entropy.MagnetUnits, isotherm: bool) -> float:
    """Root mean square over the folds of the largest |ΔS_M| error each fold's misfit at its held-out X2
    implies, J/(kg·K) (see the module's docstring); NaN with no fold."""
    x, y = data.arrays()
    x1, x2_set, values = x[:, 0], data.x2_set_point, np.unique(data.x2_set_point)
    errors = []
    for x2_i, model in folds.items():
        i = int(np.argmin(np.abs(values - x2_i)))
        if not 0 < i < values.size - 1:
            continue
        if isotherm:
            errors.append(_isotherm_error(model, data, units, i))
            continue
        half = float(entropy.to_tesla(values[i + 1] - values[i - 1], units.h_unit)) / 2
        sel = np.isclose(x2_set, values[i], rtol=1e-9, atol=0.0)
        t_axis = np.linspace(x1[sel].min(), x1[sel].max(), _T_POINTS)
        errors.append(float(np.max(uncertainty.measured_error(model, x1, x2_set, y, x[:, 1], values[i], units,
                                                               t_axis, half))))
    return float(np.sqrt(np.mean(np.square(errors)))) if errors else float("nan")


def _isotherm_error(model, data, units: entropy.MagnetUnits, i: int) -> float:
    """The largest |ΔS_M| error the misfit at the held-out isotherm i implies (isotherms: X1 the field, X2 T)."""
    return float(np.max(np.abs(isotherms.held_out_integral(model, data, units, i)[1])))


def scores(project, candidates: dict[str, Method], units: entropy.MagnetUnits) -> pd.DataFrame:
    """The candidates' held-out scores: columns method, error_J_per_kgK, in the order given. Only the evenly
    spread folds count (:func:`uncertainty.fold_fields` without a peak: the rule :func:`default` was chosen with;
    an isotherm project's folds at its peak serve its band)."""
    iso = isotherms.is_isotherm(project.units)
    even = set(uncertainty.fold_fields(project.data.x2_values))
    return pd.DataFrame([(key, held_out_error({v: f for v, f in m.folds.items() if v in even}, project.data, units,
                                              iso)) for key, m in candidates.items()],
                        columns=["method", "error_J_per_kgK"])


def default(fields_tesla=None, smooth: bool = False) -> str:
    """Which candidate answers by default (the first of :func:`preference`)."""
    return preference(fields_tesla, smooth)[0]


def preference(fields_tesla=None, smooth: bool = False) -> tuple[str, ...]:
    """The candidates that answer by default, in order: the first that could be made answers (:func:`pick`).
    The rule's own choice first: isotherms (no `fields_tesla`) the networks (the held-out score sees only
    the temperature direction, and picked baselines whose field steps cost more); M(T) sweeps the networks, or
    below a wide gap just above zero field (:func:`uncertainty.low_gap`), which no fold tests inside:

    * from a first field at 0 T or remanent (below ``entropy.ZERO_FIELD_T``), the mean of the networks and RBF,
      which err in opposite directions inside such a gap on most magnets of the family benchmark;
    * from a higher first field (an order of magnitude below the next), the Arrott-plot interpolation, whose
      straight Arrott lines follow M(H) across the gap where the networks and RBF were far off (README,
      fidelity, session 25). From 0 T its tangent has to reach down across the whole gap, and on the family it
      was far off on some magnets there.

    Without such a gap, `smooth` readings (:func:`smoothness`: they scatter about their own curves far less than
    the networks miss them) are answered by the Arrott interpolation, which goes through them: on noise-free,
    finely measured magnets the networks' own misfit made them worse than linear interpolation and moved the
    peak's temperature (README, fidelity, sessions 30 and 31); the networks' part is the noise, and there is none
    to remove. From 0 T or a remanent field its tangent has to reach the cusp at T_C, and the mean of the networks
    and the Arrott interpolation answers there. On noisy readings the networks alone answer, with the narrower band.

    When the rule's choice could not be made (its folds are missing), the networks answer; below a wide gap above
    zero field the mean of the networks and RBF first, the answer such a gap had before the Arrott interpolation.
    """
    if fields_tesla is None:
        return (DEFAULT_ISOTHERMS,)
    above_zero = float(np.min(fields_tesla)) >= entropy.ZERO_FIELD_T
    if not uncertainty.low_gap(fields_tesla):
        return (DEFAULT,) if not smooth else (DEFAULT_SMOOTH if above_zero else DEFAULT_SMOOTH_FROM_ZERO, DEFAULT)
    return (DEFAULT_WIDE_GAP, DEFAULT_LOW_GAP, DEFAULT) if above_zero else (DEFAULT_LOW_GAP, DEFAULT)


def smoothness(data, model) -> tuple[float, float]:
    """(the readings' scatter, the networks' misfit), each a robust relative standard deviation.

    The scatter: :func:`baselines.relative_scatter` (each reading's residual from the cubic through its
    neighbours along X1; on smooth curves the cubic's own error is of fourth order in the step, so this is the
    measurement noise). The misfit: the model's relative residual at the readings, the same way. Both NaN when
    no curve has 5 readings."""
    x, y = data.arrays()
    x1, x2 = x[:, 0], data.x2_set_point
    scatter = relative_scatter(x1, x2, y)
    if not np.isfinite(scatter):
        return float("nan"), float("nan")
    predicted = np.asarray(model.predict(x1, x2), dtype=float)
    misfit = float(np.median(np.abs(relative(y - predicted, y)))) / MAD
    return scatter, misfit


def pick(table: pd.DataFrame, default: str | Sequence[str]) -> str:
    """The candidate that answers: the first of `default` (a key of :data:`CANDIDATES`, or keys in order of
    preference, :func:`preference`) that could be made, else the networks; or with "held-out" the smallest finite
    score (ties: the first)."""
    errors = dict(zip(table["method"], table["error_J_per_kgK"]))
    keys = (default,) if isinstance(default, str) else tuple(default)
    if "held-out" not in keys:
        return next((key for key in keys if key in errors), "network")
    finite = table[np.isfinite(table["error_J_per_kgK"])]
    return "network" if finite.empty else str(finite.loc[finite["error_J_per_kgK"].idxmin(), "method"])
