"""Held-out validation of the search's best configurations, and the method comparison.

The published method ranks models by *training* R², which says how well a
network reproduces the measured curves, not how well it interpolates between
them — and interpolating between fields is the whole point of the twin. The
honest measure is a leave-one-X2-curve-out error. Scoring every trial that way
would multiply the search's cost by the number of folds, so the scheme here is
the cheap, sound one: after the search, retrain the best few configurations
(by training R²; default the top 5 of the stored models) with one
interior X2 curve held out at a time, for a few interior curves spread over the
range (default 3), and record the mean RMSE on the held-out curves (in Y's
units) on each trial as the user attribute ``holdout_rmse``. With the project
objective "holdout", :func:`mat_interp_core.models.ranked` then puts
the lowest held-out error first.

:func:`compare_methods` puts the network next to the baselines a physicist
would use by hand (linear, PCHIP, RBF) on the same fine grid, with the same
figures of merit and the same held-out curves.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from mat_interp_core import entropy, models, optuna_rdb, simulate
from mat_interp_core.baselines import BASELINES, _interior_subset, leave_one_x2_out_rmse
from mat_interp_core.projects import ProjectError, ProjectHandle

__all__ = [
    "DEFAULT_TOP",
    "DEFAULT_CURVES",
    "holdout_x2_values",
    "holdout_scores",
    "validate_project",
    "validation_frame",
    "compare_methods",
]

DEFAULT_TOP = 5
DEFAULT_CURVES = 3

Progress = Callable[[int, int, str], None]  # (done, total, message)


def holdout_x2_values(x2_values: Sequence[float], n_curves: int = DEFAULT_CURVES) -> list[float]:
    """Up to n_curves interior X2 values, evenly spread (the end curves cannot be interpolated)."""
    values = np.unique(np.asarray(x2_values, dtype=float))
    if n_curves < 1:
        raise ProjectError(f"the number of held-out curves must be >= 1; got {n_curves}")
    if values.size < 3:
        raise ProjectError(
            f"held-out validation needs an interior X2 curve to hide: the data has {values.size} X2 values, at least 3 are needed"
        )
    return [float(v) for v in _interior_subset(values, int(n_curves))]


def holdout_scores(
    data,
    params: dict,
    curves: Sequence[float],
    *,
    epochs: int,
    patience: int,
    seed: int | None = None,
    on_fold: Callable[[float, float], None] | None = None,
) -> dict[float, float]:
    """RMSE (Y units) on each curve in `curves` of the configuration `params` trained without it."""
    from mat_interp_core import network, training

    x, y = data.arrays()
    out: dict[float, float] = {}
    for x2 in curves:
        model, result, mean, std = training.train_config(
            data, params, epochs=epochs, patience=patience, seed=seed, holdout_x2=x2,
            max_steps=training.search_max_steps(len(y)),  # trained as the search trains it
        )
        test = data.set_points.mask(x2)
        pred = network.predict_std(model, x[test]) * std + mean
        rmse = float(np.sqrt(np.mean((pred - y[test]) ** 2)))
        out[float(x2)] = rmse if math.isfinite(rmse) else math.inf
        if on_fold is not None:
            on_fold(float(x2), out[float(x2)])
    return out


def _candidates(project: ProjectHandle, top: int, n_curves: int, data=None):
    """(project, data, held-out curves, the best `top` stored COMPLETE trials by training R²).

    `data`: the project's training data when the caller has it already (else it is read from the database)."""
    from optuna.trial import TrialState

    if not isinstance(top, int) or top < 1:
        raise ProjectError(f"--top must be a whole number >= 1; got {top!r}")
    data = project.data if data is None else data
    curves = holdout_x2_values(data.x2_values, n_curves)
    study = project.study()
    stored = models.values(project)
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.number in stored and t.value is not None and math.isfinite(t.value)
    ]
    if not complete:
        raise ProjectError(f"project {project.name!r} has no finished trial with a model yet; train it first")
    return project, data, curves, sorted(complete, key=lambda t: -t.value)[:top]


def _scored(trial, curves: list[float]) -> bool:
    return trial.user_attrs.get("holdout_x2") == curves and "holdout_rmse" in trial.user_attrs


def validation_status(
    project: ProjectHandle, *, top: int = DEFAULT_TOP, n_curves: int = DEFAULT_CURVES, data=None
) -> tuple[int, int]:
    """(how many of the best `top` trials have a held-out score on the default curves, how many there are).

    `data`: the project's training data, when the caller keeps it (a page that polls this)."""
    _, _, curves, chosen = _candidates(project, top, n_curves, data)
    return sum(_scored(t, curves) for t in chosen), len(chosen)


def validate_project(
    project: ProjectHandle,
    *,
    top: int = DEFAULT_TOP,
    n_curves: int = DEFAULT_CURVES,
    force: bool = False,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Held-out score for the best `top` stored trials (by training R²); returns :func:`validation_frame`.

    Every chosen trial's configuration (its hyper-parameters, the project's
    epochs, patience and seed) is retrained once per held-out curve. Trials
    already scored on the same curves are skipped unless `force`, so calling
    this again after more trials costs only the new ones. `progress(done,
    total, message)` is called after each retraining (it may raise to abort).
    Writes the user attributes holdout_rmse (mean over the held-out curves),
    holdout_rmse_by_x2, holdout_x2 and holdout_s.
    """
    project, data, curves, chosen = _candidates(project, top, n_curves)
    todo = [t for t in chosen if force or not _scored(t, curves)]
    total = len(todo) * len(curves)
    done = 0
    space = project.space
    for trial in todo:
        started = time.perf_counter()
        seed = None if space.seed is None else int(space.seed) + trial.number

        def on_fold(x2: float, rmse: float, trial=trial) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, f"trial {trial.number}: {project.x2_name} = {x2:g} held out, RMSE {rmse:.4g}")

        scores = holdout_scores(
            data, space.params_of(trial), curves, epochs=space.epochs, patience=space.patience, seed=seed,
            on_fold=on_fold,
        )
        mean = float(np.mean(list(scores.values())))
        optuna_rdb.set_finished_user_attrs(
            project.url,
            optuna_rdb.trial_id(trial),
            {
                "holdout_rmse": mean if math.isfinite(mean) else None,
                "holdout_rmse_by_x2": {f"{k:.10g}": v for k, v in scores.items()},
                "holdout_x2": curves,
                "holdout_s": round(time.perf_counter() - started, 3),
            },
        )
    return validation_frame(project)


def validation_frame(project: ProjectHandle) -> pd.DataFrame:
    """Trials with a held-out score: trial, R2, holdout_rmse, rank by each, the held-out curves."""
    from optuna.trial import TrialState

    study = project.study()
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("holdout_rmse") is None and "holdout_x2" not in t.user_attrs:
            continue
        rows.append(
            {
                "trial": t.number,
                "R2": t.value,
                "holdout_rmse": t.user_attrs.get("holdout_rmse"),
                "holdout_x2": ",".join(f"{v:g}" for v in t.user_attrs.get("holdout_x2", [])),
                "layers": t.params.get("layers"),
                "nodes": t.params.get("nodes"),
                "lr": t.params.get("lr"),
                "batch": t.params.get("batch"),
                "solver": t.params.get("solver", t.user_attrs.get("solver")),
            }
        )
    frame = pd.DataFrame(rows, columns=["trial", "R2", "holdout_rmse", "holdout_x2", "layers", "nodes", "lr", "batch", "solver"])
    if len(frame):
        frame["rank_R2"] = frame["R2"].rank(ascending=False, method="min").astype(int)
        frame["rank_holdout"] = frame["holdout_rmse"].rank(ascending=True, method="min").astype("Int64")
        frame = frame.sort_values(["holdout_rmse", "trial"], na_position="last").reset_index(drop=True)
    return frame


# --------------------------------------------------------------------------- comparison


def compare_methods(
    project: ProjectHandle,
    units: entropy.MagnetUnits,
    *,
    dh_tesla: float | Sequence[float] = 5.0,
    k: int | None = None,
    t_step: float | None = None,
    h_step_t: float | None = None,
    method: str = "maxwell",
    n_curves: int = DEFAULT_CURVES,
    max_points: int = 5_000_000,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """|ΔS_M| figures of every method on the same fine grid, with their leave-one-X2-out error.

    Methods: direct (the trapezoid on the measured data itself), linear and
    PCHIP interpolation along X2, RBF (kernel/epsilon/smoothing by
    cross-validation), the best network and the ensemble of the best `k`
    (default: every model the project keeps).
    The leave-one-X2-out RMSE (Y units) uses the curves the network's
    validation held out (else the default interior ones); for a network it is
    the stored held-out score of its trial ("-" until `mat-interp validate`
    has run), for the ensemble the mean of its members' scores (an upper
    bound of the ensemble's own error, since the RMSE of a mean is at most
    the mean of the RMSEs).
    """
    from mat_interp_core import report

    data = project.data
    x, y = data.arrays()
    x1, x2 = x[:, 0], data.x2_set_point  # curve-by-curve methods work on the set points, not the read-backs
    dhs = list(np.atleast_1d(np.asarray(dh_tesla, dtype=float)))

    # networks first (so a project without models fails before the slow baselines)
    try:
        members = models.load_best(project, project.space.keep_models if k is None else max(1, int(k)))
    except ProjectError:
        members = []
    study = project.study()
    attrs = {t.number: t.user_attrs for t in study.get_trials(deepcopy=False)}
    held = next((attrs[m.trial_number].get("holdout_x2") for m in members if attrs.get(m.trial_number, {}).get("holdout_x2")), None)
    curves = held or holdout_x2_values(data.x2_values, n_curves)

    steps = 2 + len(BASELINES) + (2 if len(members) > 1 else 1 if members else 0)
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps, message)

    rows: list[dict] = []

    def add(method_name: str, figures: pd.DataFrame, loo, note: str) -> None:
        for _, f in figures.iterrows():
            row = {
                "method": method_name,
                "dH_T": f["dH_T"],
                "peak_J_per_kgK": f["peak_J_per_kgK"],
                "T_peak_K": f["T_peak_K"],
                "FWHM_K": f["FWHM_K"],
                "RCP_J_per_kg": f["RCP_J_per_kg"],
                "spikiness": f["spikiness"],
                "peak_std": f.get("peak_std", np.nan),
                "loo_rmse": loo,
                "note": note,
            }
            rows.append(row)

    # direct: the paper's calculation on the measured grid (the report's coarse data)
    direct = report.coarse_curves(project, units, dhs, method)
    add("direct", entropy.figures_of_merit(direct), None, "trapezoid on the measured fields (no interpolation)")
    tick("direct")

    sim_kw = dict(dh_tesla=dhs, t_step=t_step, h_step_t=h_step_t, method=method, max_points=max_points)
    for key, cls in BASELINES.items():
        model = cls().fit(x1, x2, y)
        loo = leave_one_x2_out_rmse(cls, x1, x2, y, held_out=np.asarray(curves))
        sim = simulate.model_entropy(project, model, units, **sim_kw)
        note = ""
        if key == "rbf":
            p = model.params
            note = f"kernel {p['kernel']}, epsilon {p['epsilon']:g}, smoothing {p['smoothing']:g}"
        add(key, sim.figures, float(np.mean(list(loo.values()))) if loo else None, note)
        tick(key)

    if members:
        best = members[0]
        score = attrs.get(best.trial_number, {}).get("holdout_rmse")
        sim = simulate.model_entropy(project, best, units, **sim_kw)
        add("network", sim.figures, score, f"trial {best.trial_number}, training R² {best.value:.6f}")
        tick("network")
        if len(members) > 1:
            ens = simulate.Ensemble(members)
            scores = [attrs.get(m.trial_number, {}).get("holdout_rmse") for m in members]
            loo = float(np.mean(scores)) if all(s is not None for s in scores) else None
            sim = simulate.model_entropy(project, ens, units, **sim_kw)
            trials = ",".join(str(m.trial_number) for m in members)
            add(f"ensemble{len(members)}", sim.figures, loo, f"trials {trials}; LOO = mean of members'")
            tick("ensemble")
    out = pd.DataFrame(rows)
    out.attrs["holdout_x2"] = list(curves)
    out.attrs["grid"] = sim.grid_description
    return out
