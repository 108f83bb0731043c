"""Fine-grid prediction from the best model, or from an ensemble of the best few.

Every predictor here (a trained network, an ensemble, a baseline interpolator)
has ``predict(x1, x2) -> y`` in the user's units, so simulate and entropy take
any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mat_interp_core import choice, isotherms, lowfield, models
from mat_interp_core.dataset import make_grid
from mat_interp_core.projects import Project, ProjectError, ProjectHandle


@dataclass
class Ensemble:
    """Mean of several models; ``spread`` gives their standard deviation."""

    members: list

    name = "ensemble"

    def predict(self, x1, x2) -> np.ndarray:
        return np.mean([m.predict(x1, x2) for m in self.members], axis=0)

    def predict_with_spread(self, x1, x2) -> tuple[np.ndarray, np.ndarray]:
        preds = np.array([m.predict(x1, x2) for m in self.members])
        return preds.mean(axis=0), preds.std(axis=0)


def predictor(project: ProjectHandle, k: int = 1):
    """The best model (k=1) or an ensemble of the best k."""
    members = models.load_best(project, k)
    return members[0] if len(members) == 1 else Ensemble(members)


def default_k(project: Project) -> int:
    """How many models answer for a project by default, in every front end: all it keeps (the ensemble)."""
    return max(1, int(project.space.keep_models))


def describe_models(project: ProjectHandle, model) -> str:
    """What answers, in words: "ensemble of 10 refined models", "the best model (trial 7)", ..."""
    members = list(getattr(model, "members", None) or [model])
    numbers = {m.trial_number for m in members if getattr(m, "trial_number", None) is not None}
    refined = sum("refined" in t.user_attrs for t in project.study().get_trials(deepcopy=False)
                  if t.number in numbers)
    kind = "refined " if refined == len(members) else "" if refined == 0 else f"({refined} refined) "
    if len(members) == 1:
        return f"the best {kind}model (trial {members[0].trial_number})"
    return f"ensemble of {len(members)} {kind}models (trials {', '.join(str(m.trial_number) for m in members)})"


def model_set(project: ProjectHandle, k: int | None = None):
    """(predictor, its description): the models that answer for the project; ``k=None``: :func:`default_k`.

    The one choice behind `entropy`, `simulate`, `fitted` and the Results/Simulate/Entropy pages."""
    k = default_k(project) if k is None else int(k)
    model = predictor(project, k)
    return model, describe_models(project, model)


def predict_frame(model, project: Project, grid: pd.DataFrame) -> pd.DataFrame:
    """Add the prediction (and the ensemble spread) to a grid with the project's X columns."""
    x1 = grid[project.x1_name].to_numpy()
    x2 = grid[project.x2_name].to_numpy()
    out = grid.copy()
    if isinstance(model, Ensemble):
        mean, spread = model.predict_with_spread(x1, x2)
        out[project.y_name] = mean
        out[f"{project.y_name} std"] = spread
    else:
        out[project.y_name] = model.predict(x1, x2)
    return out


def simulate(project: ProjectHandle, x1_values, x2_values, *, k: int = 1, max_points: int = 5_000_000, model=None) -> pd.DataFrame:
    """Predict Y on the grid x1_values x x2_values (user's units), long format."""
    grid = make_grid(np.asarray(x1_values, float), np.asarray(x2_values, float), max_points=max_points,
                     names=(project.x1_name, project.x2_name))
    return predict_frame(model or predictor(project, k), project, grid)


def fitted(project: ProjectHandle, *, k: int = 1, model=None) -> pd.DataFrame:
    """The training data with the model's values and residuals at the training points."""
    data = project.data.frame
    out = predict_frame(model or predictor(project, k), project, data[[project.x1_name, project.x2_name]])
    out.insert(2, f"{project.y_name} measured", data[project.y_name].to_numpy())
    out["residual"] = out[project.y_name] - out[f"{project.y_name} measured"]
    return out


# ---------------------------------------------------------------- magnetic entropy change


def project_units(project: ProjectHandle, **overrides):
    """The project's |ΔS_M| units: explicit `overrides` (m_unit, h_unit, mass_mg, molar_mass_g) first,
    then those stored with the project; a missing one raises entropy.UnitError."""
    from mat_interp_core import entropy

    return entropy.resolve_units(project.units, **overrides)


def project_entropy(
    project: ProjectHandle,
    units,
    *,
    dh_tesla=None,
    source: str = "simulated",
    k: int | None = None,
    t_step: float | None = None,
    h_step_t: float | None = None,
    method: str = "maxwell",
    max_points: int = 5_000_000,
    model=None,
    choose: bool = True,
    answer: str | None = None,
):
    """|ΔS_M|(T, ΔH) of a project: from the simulated fine grid (the models of :func:`model_set`, with the
    held-out band of :mod:`mat_interp_core.uncertainty`) or straight from the training data.

    By default (no `k`, `choose`) the answer is the method :mod:`mat_interp_core.choice` picks
    once the networks' held-out folds are stored (the networks, a baseline, or their mean), with the band of
    its own held-out evidence; ``result.choice`` has every candidate's held-out score and ``result.models``
    says which answered; `answer` (a key of ``choice.CANDIDATES``) makes that candidate answer instead
    of the default. `model`: the networks already loaded (else :func:`model_set`); with `choose=False`
    they answer alone. Either way, for M(T) sweeps from a low first field, the answer's |ΔS_M| of the lowest
    fields near T_C is the low-field equation of state's (:func:`low_field`).
    Returns an :class:`entropy.SimulatedEntropy`.

    `units` is an :class:`entropy.MagnetUnits` (see :func:`project_units`). X1 must be the temperature in
    kelvin. The simulated grid is chosen by :func:`entropy.fine_axes` unless t_step / h_step_t are given.
    """
    from mat_interp_core import entropy

    if source not in ("simulated", "training"):
        raise ProjectError(f"source must be 'simulated' or 'training'; got {source!r}")
    from mat_interp_core import uncertainty

    data = project.data
    isotherm = isotherms.is_isotherm(project.units)
    if source == "training" and isotherm:  # each isotherm on one field grid, the trapezoid between temperatures
        return isotherms.isotherm_entropy(data, units, None, dh_tesla=dh_tesla, method=method)
    x, _ = data.arrays()
    x[:, 1] = data.x2_set_point  # curve by curve: the set points, not the jittering read-backs
    if dh_tesla is not None:  # a ΔH the fields cannot give is refused before any model is loaded
        entropy.check_dh(dh_tesla, entropy.to_tesla(x[:, 0] if isotherm else x[:, 1], units.h_unit))
    if source == "training":
        if dh_tesla is None:
            dh_tesla = entropy.measured_dh_tesla(x[:, 1], units.h_unit)
        t_grid = None
        if t_step is not None:
            t_axis, _ = entropy.fine_axes(x[:, 0], x[:, 1], h_unit=units.h_unit, t_step=t_step, h_step_t=1e9,
                                          max_points=max_points)
            t_grid = t_axis
        curves = entropy.delta_s(data.frame.assign(**{data.x2_name: x[:, 1]}), t_col=data.x1_name, h_col=data.x2_name, m_col=data.y_name,
                                 dh_tesla=dh_tesla, method=method, t_grid=t_grid, **units.kwargs())
        t_axis = np.unique(curves["T_K"].to_numpy())
        return entropy.SimulatedEntropy(curves, entropy.figures_of_merit(curves), t_axis, data.x2_values)
    chosen_by_default = k is None and choose
    if model is None:
        model, described = model_set(project, k)
    else:
        described = describe_models(project, model)
    grid = dict(dh_tesla=dh_tesla, t_step=t_step, h_step_t=h_step_t, method=method, max_points=max_points)
    if answer:
        _check_answer(project, answer, chosen_by_default)
    candidates = choice.methods(project, model, h_unit=units.h_unit) if chosen_by_default else None
    if candidates is None and answer:
        raise ProjectError(f"answering with {answer!r} needs the held-out folds: "
                           f"{uncertainty.calibration_status(project) or 'they belong to another model'}")
    if candidates is None:  # no held-out evidence (or a model set asked for): the networks, with their band
        result = model_entropy(project, model, units, **grid)
        result.models = described
        low = None if isotherm else lowfield.fit_readings(data, units)
        corrected = low_field(result, model, low, units)
        cal = uncertainty.project_calibration(project, units, result.t_axis)
        cal = uncertainty.with_low_field(cal, low, result.curves) if corrected else cal
        return with_band(result, cal, 0.0 if isotherm else entropy.measured_t_step(x[:, 0], data.x2_set_point))
    table = choice.scores(project, candidates, units)
    keys, why = ((answer,), "") if answer else default_answer(project, candidates["network"].answer, units)
    which = choice.pick(table, keys)
    result = candidate_entropy(project, candidates, table, which, units, described, **grid)
    result.models += why if which == keys[0] else ""
    return result


def default_answer(project: ProjectHandle, network, units) -> tuple[tuple[str, ...], str]:
    """(the keys ``choice.preference`` gives the project, in order, a clause saying why when the readings'
    smoothness decided).
    `network`: the networks' answer, evaluated at the readings only when the rule asks (M(T), no low gap)."""
    from mat_interp_core import entropy, uncertainty

    if isotherms.is_isotherm(project.units):
        return choice.preference(None), ""
    data = project.data
    fields = entropy.to_tesla(data.x2_values, units.h_unit)
    if uncertainty.low_gap(fields):
        return choice.preference(fields), ""
    scatter, misfit = choice.smoothness(data, network)
    smooth = misfit > choice.SMOOTH_RATIO * scatter
    why = (f"; chosen because the readings scatter by {100 * scatter:.2g} % about their own curves and the networks "
           f"miss them by {100 * misfit:.2g} %" if smooth else "")
    return choice.preference(fields, smooth), why


def answers(project: ProjectHandle) -> tuple[str, ...]:
    """What can answer a project's |ΔS_M| by name (``project_entropy(answer=...)``): its protocol's candidates and
    "held-out" (the smallest held-out score)."""
    return (*choice.candidates(isotherms.is_isotherm(project.units)), "held-out")


def _check_answer(project: ProjectHandle, answer: str, chosen_by_default: bool) -> None:
    """One sentence when `answer` cannot answer: unknown for the protocol, or a model set asked for (missing
    folds are found where the candidates are made)."""
    if answer not in answers(project):
        raise ProjectError(f"cannot answer with {answer!r}: choose one of {', '.join(answers(project))}")
    if not chosen_by_default:
        raise ProjectError(f"answering with {answer!r} needs the default model set (every kept model); drop the "
                           "ensemble size")


# below a low gap, half the difference between the networks and the interpolation that answers with (or
# instead of) them: the answer's (other method, weight on |answer - other|)
_SPREAD = {"network": ("rbf", 0.5), "network+rbf": ("rbf", 1.0), "arrott": ("network", 0.5)}


def candidate_entropy(project: ProjectHandle, candidates: dict, table, which: str, units, described: str,
                      **grid):
    """|ΔS_M| answered by the candidate `which` of ``choice.methods`` (`table`: their held-out scores), with the
    band of its own held-out evidence; `described` says what the networks are (:func:`describe_models`)."""
    from mat_interp_core import entropy, uncertainty

    data = project.data
    isotherm = isotherms.is_isotherm(project.units)
    x, y = data.arrays()
    try:
        result = model_entropy(project, candidates[which].answer, units, **grid)
    except np.linalg.LinAlgError:  # a local RBF system singular somewhere on the fine grid: the networks answer
        which = "network"
        result = model_entropy(project, candidates[which].answer, units, **grid)
    table = table.assign(answers=table["method"] == which)
    chosen = candidates[which]
    result.models = (described if which == "network"
                     else f"{choice.label(which, isotherm)} (the networks: {described})")
    low = None if isotherm else lowfield.fit_readings(data, units)  # the answer's and its band partner's
    corrected = low_field(result, chosen.answer, None if _keeps_readings(which, low) else low, units)
    if isotherm:
        cal = uncertainty.calibrate_isotherms(chosen.folds, data, units, t_axis=result.t_axis,
                                              reference=chosen.reference, field_fold=chosen.t_fold,
                                              networks=which == "network")
        result = with_band(result, cal)
    else:  # each fold is scored where the field really was (x[:, 1]: the read-backs)
        cal = uncertainty.calibrate(chosen.reference, chosen.folds, x[:, 0], data.x2_set_point, units,
                                    t_axis=result.t_axis, transform=chosen.transform, y=y, x2_read=x[:, 1],
                                    t_fold=chosen.t_fold, networks=which == "network")
        other, weight = _SPREAD.get(which, (None, 0.0))
        if other in candidates and uncertainty.low_gap(cal.fields_t):  # no fold tests there
            try:
                # its main curve only: an ensemble partner's members would each be computed for nothing
                partner = data_entropy(data, units, candidates[other].answer, False, band=False, **grid)
                low_field(partner, candidates[other].answer, low, units)
                cal = uncertainty.with_spread(cal, result.curves, partner.curves, weight)
            except np.linalg.LinAlgError:  # RBF singular on the fine grid: the fold band alone, and the warning
                pass
        cal = uncertainty.with_low_field(cal, low, result.curves) if corrected else cal
        result = with_band(result, cal, entropy.measured_t_step(x[:, 0], data.x2_set_point))
    result.choice = table
    return result


def _keeps_readings(which: str, low) -> bool:
    """Whether the answer `which` stays as it is where the low-field equation of state `low` would replace it: the
    Arrott interpolation from a first field of ``lowfield.TOP_T``. It goes through the readings, and from 0.5 T
    there is no spike in ∂M/∂T for the equation of state to resolve; on noise-free magnets the equation of state
    moved the answer's T_peak by up to 1.5 K there (README, fidelity, session 32). The networks' answer, and every
    lower first field, keep the correction."""
    return which == "arrott" and low is not None and low.h0 >= lowfield.TOP_T - 1e-9


def low_field(result, model, low, units) -> bool:
    """`result` (|ΔS_M| of `model`) with its low-field part near T_C from `low`, the equation of state fitted to
    the readings (``lowfield.fit_readings``; None where it does not apply); `result.models` says so. True when
    it did."""
    if low is None:
        return False
    lowfield.correct(result, model, low, units)
    result.models = (result.models + "; " if result.models else "") + lowfield.NOTE
    return True


def model_entropy(project: ProjectHandle, model, units, *, dh_tesla=None, t_step: float | None = None,
                  h_step_t: float | None = None, method: str = "maxwell", max_points: int = 5_000_000):
    """|ΔS_M| of any predictor of the project's Y (a network, an ensemble, a fitted baseline) on the grid the
    product picks for the project's data, without a band (isotherms: the roles swap before the Maxwell code)."""
    return data_entropy(project.data, units, model, isotherms.is_isotherm(project.units), dh_tesla=dh_tesla,
                        t_step=t_step, h_step_t=h_step_t, method=method, max_points=max_points)


def data_entropy(data, units, model, isotherm: bool, **grid):
    """|ΔS_M| of a predictor of `data`'s Y on the grid the product picks (:func:`model_entropy` without a
    project: the benches call it on their cases). `grid`: entropy.simulated_delta_s's grid arguments."""
    from mat_interp_core import entropy

    if isotherm:
        return isotherms.isotherm_entropy(data, units, model, **grid)
    x, _ = data.arrays()
    return entropy.simulated_delta_s(model, x[:, 0], data.x2_set_point, units, **grid)


def with_band(result, cal, t_window: float = 0.0):
    """`result` with the calibrated band: curves' dS_band (the half-width), dS_low and dS_high (its edges);
    figures' peak_band, peak_low and peak_high; and band_note saying what it is.

    At the peak the band is its largest reach under and over the answer within `t_window` K of the peak
    temperature: the measured temperature step, since the data place the peak no closer than that (and the
    band's error curve, made from held-out fits, need not peak at the same node as the answer)."""
    from mat_interp_core import uncertainty

    dhs = sorted(result.curves["dH_T"].unique())
    band = uncertainty.band(cal, dhs, t=np.unique(result.curves["T_K"].to_numpy()))
    curves = result.curves.drop(columns=["dS_band", "dS_low", "dS_high"], errors="ignore").merge(
        band, on=["T_K", "dH_T"], how="left")
    below, above = curves.pop("dS_below"), curves.pop("dS_above")
    result.curves = curves.assign(dS_low=(curves["dS_J_per_kgK"] - below).clip(lower=0.0),
                                  dS_high=curves["dS_J_per_kgK"] + above)
    peaks = {"peak_band": [], "peak_low": [], "peak_high": []}
    for dh, t_peak, peak in zip(result.figures["dH_T"], result.figures["T_peak_K"],
                                result.figures["peak_J_per_kgK"]):
        part = band[band["dH_T"] == dh]
        near = part[np.abs(part["T_K"] - t_peak) <= t_window]
        reach = {c: (float(near[c].max()) if len(near) else float(np.interp(t_peak, part["T_K"], part[c]))
                     if len(part) else np.nan) for c in ("dS_band", "dS_below", "dS_above")}
        peaks["peak_band"].append(reach["dS_band"])
        peaks["peak_low"].append(max(peak - reach["dS_below"], 0.0) if np.isfinite(reach["dS_below"]) else np.nan)
        peaks["peak_high"].append(peak + reach["dS_above"])
    result.figures = result.figures.assign(**peaks)
    result.calibration = cal
    held = ("isotherms (each interior isotherm left out in turn, its misfit integrated over the field; the field "
            "steps from a fit on every other field reading"
            if cal.isotherm else "fields (each interior field left out in turn, the error carried through ∂M/∂T and "
            "the field integral")
    result.band_note = (f"band: nominal {100 * uncertainty.COVERAGE:.0f} % interval calibrated on held-out {held})"
                        if cal.calibrated else f"band not calibrated: {cal.reason}")
    result.warnings = uncertainty.band_warnings(cal, t_window)
    result.data_t_step = t_window
    result.band_note = "; ".join((result.band_note, *result.warnings))
    return result
