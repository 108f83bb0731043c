"""Refinement: retrain the search's best configurations for the whole epoch budget.

The search (the paper's method) stops a trial once its training loss has not
improved for `patience` epochs (20). That is right for *ranking*
configurations cheaply, but it ends most trials before the piecewise-constant
learning-rate decay (lr until 40 % of the budget, lr/2 until 70 %, then lr/5)
has started, so the stored models are under-trained, and it favours smooth
slow solvers (SGD) over Adam, whose noisier loss trips the early stop sooner.
The |ΔS_M| of such models (a derivative along T, integrated along H) carries a
few per cent of bias that their training R² hardly shows.

This step beyond the paper keeps the search untouched and afterwards:

1. takes the `candidates` COMPLETE trials with the best search R² (default
   keep_models, 10);
2. retrains each configuration (its layers, nodes, learning rate and batch
   size; with `solver`, Adam by default — see below; its seed, the project's
   seed + the trial number, and `seeds` - 1 more, averaged into one model) on
   all the data for `epochs` epochs without early stopping, so the decay runs
   to its end (the weights of the lowest training loss are restored as usual);
3. stores the refined model in place of the trial's model, with the refined
   training R² as the model's value, and keeps the best `top` (default
   keep_models, i.e. all of them; never fewer than keep_models) by that value;
   with `tolerance`, also drops any whose misfit 1 - R² exceeds `tolerance` x
   the best one's (off by default: with Adam the refined fits mostly agree
   within 2x, and on small or quick projects a guard would thin the ensemble
   to one model).

Why Adam: early stopping on the training loss ends Adam trials first (their
loss is the noisiest), so a search can drift to SGD/Nesterov configurations
whose smooth loss keeps improving under patience 20 but which fit far worse
for the same epochs. Measured on the fidelity bench (a search with only
Nesterov trials): refined with their own solver for 1000 epochs they reach
R² ≈ 0.99987 and overshoot the |ΔS_M| peak at ΔH = 1 T by 5–8 %; the same
configurations refined with Adam reach R² ≈ 0.999997 and ≤ 2.2 %.
``solver="trial"`` keeps each trial's own solver.

The ensemble (:func:`mat_interp_core.simulate.load_models`) is then the mean of
the kept refined models. All of them, not the best half by refined R²: on the
fidelity bench (5 seeds, README) the mean of all 10 refined configurations met
the 3 % peak target for every seed (worst 2.6 % at ΔH = 1 T, curve RMSE 0.121
J/(kg·K)), the best 5 of them not (worst 3.5 %, RMSE 0.130), at no extra
training: refined R² does not rank the |ΔS_M| of configurations that all fit
this well. Trials get the user attributes ``refined`` (the settings), ``refined_r2`` and ``refined_s``; trials already refined with the
same settings are skipped, so calling it again (after ``train --more``) costs
only the new candidates.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import sqlalchemy as sa

from mat_interp_core import projects, simulate, storage
from mat_interp_core.projects import ProjectError

__all__ = ["DEFAULT_SEEDS", "DEFAULT_SOLVER", "DEFAULT_TOLERANCE", "plan", "refine_settings", "refine_project",
           "refine_status", "refined_trials"]

DEFAULT_SEEDS = 3  # seeds averaged per configuration
DEFAULT_TOLERANCE = None  # a number: also drop refined models with 1 - R² > this x the best model's
DEFAULT_SOLVER = "adam"  # "trial": each trial's own solver

_SEED_STRIDE = 100_003  # seed j of a trial: the search's seed + j x this (no clash with other trials)

Progress = Callable[[int, int, str], None]  # (done, total, message)


def refine_settings(epochs: int, seeds: int = DEFAULT_SEEDS, solver: str = DEFAULT_SOLVER) -> dict:
    """What identifies a refinement (stored as the trial's ``refined`` attribute)."""
    return {"epochs": int(epochs), "seeds": int(seeds), "solver": solver}


def plan(space, *, top: int | None = None, candidates: int | None = None,
         epochs: int | None = None) -> tuple[int, int, int]:
    """(top, candidates, epochs) of a refinement: the given values, else the project's defaults
    (keep_models, top, its refinement_epochs or — when the project turned it off — twice its epochs)."""
    top = space.keep_models if top is None else top
    candidates = top if candidates is None else candidates
    epochs = (space.refinement_epochs or 2 * space.epochs) if epochs is None else epochs
    return top, candidates, epochs


def _candidates(url: str, name: str, n: int) -> list:
    """The `n` COMPLETE trials with the best search R²."""
    from optuna.trial import TrialState

    complete = [
        t for t in projects.load_study(url, name).get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value)
    ]
    return sorted(complete, key=lambda t: -t.value)[:n]


def refine_project(
    url: str,
    name: str,
    *,
    top: int | None = None,
    candidates: int | None = None,
    epochs: int | None = None,
    seeds: int = DEFAULT_SEEDS,
    tolerance: float | None = DEFAULT_TOLERANCE,
    solver: str = DEFAULT_SOLVER,
    force: bool = False,
    progress: Progress | None = None,
) -> list[int]:
    """Refine the best `candidates` trials, keep the best `top` refined models; returns the trials refined now.

    See the module's docstring. Defaults: `top` = the project's keep_models,
    `candidates` = top, `epochs` = the project's refinement_epochs
    (twice the search's epochs by default, and when the project has it off). `progress(done, total, message)` is
    called after each configuration (it may raise to abort; models refined
    until then stay).
    """
    from mat_interp_core import network, training
    from mat_interp_core.validation import _set_finished_trial_attrs, _trial_params

    project = projects.get_project(url, name)
    space = project.space
    top, candidates, epochs = plan(space, top=top, candidates=candidates, epochs=epochs)
    for flag, value in (("--top", top), ("--candidates", candidates), ("--epochs", epochs), ("--seeds", seeds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ProjectError(f"{flag} must be a whole number >= 1; got {value!r}")
    if tolerance is not None and (not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool)
                                  or not tolerance >= 1):
        raise ProjectError(f"--tolerance must be a number >= 1; got {tolerance!r}")
    if solver != "trial" and solver not in network.SOLVERS:
        raise ProjectError(f"--solver must be trial or one of {', '.join(network.SOLVERS)}; got {solver!r}")
    chosen = _candidates(url, name, max(candidates, top))
    if not chosen:
        raise ProjectError(f"project {name!r} has no finished trial yet; train it first")
    settings = refine_settings(epochs, seeds, solver)
    todo = [t for t in chosen if force or t.user_attrs.get("refined") != settings]
    data = projects.load_data(url, project)
    x, y = data.arrays()
    done: list[int] = []
    for trial in todo:
        started = time.perf_counter()
        base = None if space.seed is None else int(space.seed) + trial.number
        params = _trial_params(trial, space)
        if solver != "trial":
            params["solver"] = solver
        nets = []
        for j in range(seeds):
            seed = None if base is None else base + _SEED_STRIDE * j
            net, result, mean, std = training.train_config(
                data, params, epochs=epochs, patience=epochs, seed=seed
            )
            nets.append(net)
        model = network.average_models(nets)
        r2 = training.fit_r2(model, x, y, mean, std)
        if not math.isfinite(r2):
            raise ProjectError(f"refining trial {trial.number} diverged (R² is not finite)")
        training.store_model(url, project, trial.number, r2, network.with_target_scaling(model, mean, std), mean, std)
        seconds = round(time.perf_counter() - started, 3)
        _set_finished_trial_attrs(
            url, trial._trial_id, {"refined": settings, "refined_r2": r2, "refined_s": seconds},
        )
        done.append(trial.number)
        if progress is not None:
            progress(len(done), len(todo),
                     f"trial {trial.number}: {epochs} epochs, R² {trial.value:.6f} -> {r2:.6f} ({seconds:.0f} s)")
    training.keep_best_models(url, project, keep=max(top, space.keep_models))
    if tolerance is not None:
        _drop_misfits(url, project.id, tolerance)
    return done


def refine_status(url: str, name: str) -> tuple[int, int]:
    """(how many of the default candidates are refined with the project's default settings, how many there are).

    (0, 0) when the project has refinement off or no finished trial yet.
    """
    space = projects.get_project(url, name).space
    if not space.refinement_epochs:
        return 0, 0
    _, candidates, epochs = plan(space)
    settings = refine_settings(epochs)
    chosen = _candidates(url, name, candidates)
    return sum(t.user_attrs.get("refined") == settings for t in chosen), len(chosen)


def _drop_misfits(url: str, project_id: int, tolerance: float) -> None:
    """Delete the stored models whose misfit 1 - R² exceeds `tolerance` x the best one's."""
    m = storage.models
    with storage.get_engine(url).begin() as conn:
        best = conn.execute(sa.select(sa.func.max(m.c.value)).where(m.c.project_id == project_id,
                                                                    m.c.trial_number >= 0)).scalar()
        if best is None or not math.isfinite(best):
            return
        floor = 1.0 - tolerance * (1.0 - best)
        conn.execute(m.delete().where(m.c.project_id == project_id, m.c.trial_number >= 0, m.c.value < floor))


def refined_trials(url: str, name: str) -> dict[int, dict]:
    """{trial number: its refinement attributes} for the trials whose stored model is a refined one."""
    stored = simulate.model_values(url, name)
    study = projects.load_study(url, name)
    return {
        t.number: {k: v for k, v in t.user_attrs.items() if k.startswith("refined")}
        for t in study.get_trials(deepcopy=False)
        if t.number in stored and "refined" in t.user_attrs
    }
