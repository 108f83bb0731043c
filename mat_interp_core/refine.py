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
   seed + the trial number; with `seeds` > 1, that many networks trained side
   by side and averaged into one model) on
   all the data for `epochs` epochs — at most epochs x MAX_STEPS_PER_EPOCH
   optimizer steps, so large data sets cost steps, not 37x the epochs of a
   small one, and at least epochs x MIN_STEPS_PER_EPOCH, so a few hundred
   points in batches of 256 (2 steps an epoch) are not left under-trained —
   without early stopping, so the decay runs to its end (the weights of the lowest training loss are restored as usual);
3. stores the refined model in place of the trial's model, with the refined
   training R² as the model's value (unless it fits worse than the search's
   model: then the search's stays, ``refined_kept`` False), and keeps the best `top` (default
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

The ensemble (:func:`mat_interp_core.models.load_best`) is then the mean of
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

import json
import math
import os
import socket
import threading
import time
from typing import Callable

import sqlalchemy as sa

from mat_interp_core import models, optuna_rdb, projects, storage
from mat_interp_core.projects import ProjectError, ProjectHandle

__all__ = ["DEFAULT_SEEDS", "DEFAULT_SOLVER", "DEFAULT_TOLERANCE", "MAX_STEPS_PER_EPOCH", "MIN_STEPS_PER_EPOCH",
           "covers", "plan",
           "refine_epochs", "claim", "release", "refine_settings", "refine_project", "refine_progress", "refine_status",
           "refined_trials"]

DEFAULT_SEEDS = 1  # networks averaged per configuration (3 bought nothing on bench/refine_budget.py's cases)
DEFAULT_TOLERANCE = None  # a number: also drop refined models with 1 - R² > this x the best model's
DEFAULT_SOLVER = "adam"  # "trial": each trial's own solver
DEFAULT_START = "scratch"  # "search": go on from the search's stored model (cheaper; worse on bench/refine_budget.py)
STARTS = ("scratch", "search")

MAX_STEPS_PER_EPOCH = 16  # the refinement's budget: at most epochs x this many optimizer steps
MIN_STEPS_PER_EPOCH = 8  # ... and at least epochs x this many (small data sets in large batches; README)
_SEED_STRIDE = 100_003  # seed j of a trial: the search's seed + j x this (no clash with other trials)
_CLAIM = "refining"  # the trial attribute a refining process holds (see _claim)
CLAIM_STALE_SECONDS = 60.0  # a claim not refreshed for this long belongs to a dead process
CLAIM_REFRESH_SECONDS = 5.0  # how often a refining process refreshes its claim and reads the stop request

Progress = Callable[[int, int, str], None]  # (done, total, message)


def refine_settings(epochs: int, seeds: int = DEFAULT_SEEDS, solver: str = DEFAULT_SOLVER,
                    start: str = DEFAULT_START) -> dict:
    """What identifies a refinement (stored as the trial's ``refined`` attribute)."""
    out = {"epochs": int(epochs), "seeds": int(seeds), "solver": solver}
    return out if start == "scratch" else {**out, "start": start}


def covers(stored: dict | None, wanted: dict) -> bool:
    """Whether a trial refined with `stored` settings needs nothing for `wanted`: the same, or the same kind for
    more epochs (a project refined before the default budget was halved keeps its longer refinement)."""
    if not stored:
        return False
    return stored == wanted or ({**stored, "epochs": 0} == {**wanted, "epochs": 0}
                                and int(stored.get("epochs", 0)) >= int(wanted["epochs"]))


def plan(space, *, top: int | None = None, candidates: int | None = None,
         epochs: int | None = None) -> tuple[int, int, int]:
    """(top, candidates, epochs) of a refinement: the given values, else the project's defaults
    (keep_models, top, its refinement_epochs or — when the project turned it off — twice its epochs)."""
    top = space.keep_models if top is None else top
    candidates = top if candidates is None else candidates
    epochs = (space.refinement_epochs or 2 * space.epochs) if epochs is None else epochs
    return top, candidates, epochs


def _candidates(project: ProjectHandle, n: int) -> list:
    """The `n` COMPLETE trials with the best search R²."""
    from optuna.trial import TrialState

    complete = [  # the handle's trial list: a polling page reads it once per refresh
        t for t in project.trials(max_age=project.TRIALS_MAX_AGE_S)
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    return sorted(complete, key=lambda t: -t.value)[:n]


def refine_project(
    project: ProjectHandle,
    *,
    top: int | None = None,
    candidates: int | None = None,
    epochs: int | None = None,
    seeds: int = DEFAULT_SEEDS,
    tolerance: float | None = DEFAULT_TOLERANCE,
    solver: str = DEFAULT_SOLVER,
    start: str = DEFAULT_START,
    force: bool = False,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    slot: int = 0,
) -> list[int]:
    """Refine the best `candidates` trials, keep the best `top` refined models; returns the trials refined here.

    See the module's docstring. Defaults: `top` = the project's keep_models,
    `candidates` = top, `epochs` = the project's refinement_epochs
    (the search's epochs by default; twice them when the project has it off). `progress(done, total, message)` is
    called after each configuration (it may raise to abort; models refined
    until then stay). Several processes may run this at once (every local
    worker does): each claims a configuration before training it and skips
    the ones claimed by others; `slot` (the worker's index) makes them start
    on different ones. `stop` set, or the project's stop request, ends the
    configuration in training within an epoch (:class:`training.StopRequested`).
    """
    from mat_interp_core import network, training

    url, space = project.url, project.space
    top, candidates, epochs = plan(space, top=top, candidates=candidates, epochs=epochs)
    for flag, value in (("--top", top), ("--candidates", candidates), ("--epochs", epochs), ("--seeds", seeds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ProjectError(f"{flag} must be a whole number >= 1; got {value!r}")
    if tolerance is not None and (not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool)
                                  or not tolerance >= 1):
        raise ProjectError(f"--tolerance must be a number >= 1; got {tolerance!r}")
    if solver != "trial" and solver not in network.SOLVERS:
        raise ProjectError(f"--solver must be trial or one of {', '.join(network.SOLVERS)}; got {solver!r}")
    if start not in STARTS:
        raise ProjectError(f"--start must be one of {', '.join(STARTS)}; got {start!r}")
    chosen = _candidates(project, max(candidates, top))
    if not chosen:
        raise ProjectError(f"project {project.name!r} has no finished trial yet; train it first")
    settings = refine_settings(epochs, seeds, solver, start)
    todo = [t for t in chosen if force or not covers(t.user_attrs.get("refined"), settings)]
    if todo:
        shift = slot % len(todo)
        todo = todo[shift:] + todo[:shift]
    data = project.data
    x, y = data.arrays()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    done: list[int] = []
    for trial in todo:
        trial_id = optuna_rdb.trial_id(trial)
        if not force and covers(optuna_rdb.read_user_attrs(url, trial_id).get("refined"), settings):
            continue  # another process refined it meanwhile
        if not claim(url, trial_id, worker, settings, 0, 0):
            continue
        try:
            started = time.perf_counter()
            params = space.params_of(trial)
            if solver != "trial":
                params["solver"] = solver
            run_epochs = refine_epochs(epochs, len(x), params["batch"])
            checked = [time.monotonic()]

            def on_epoch(epoch: int, _loss: float) -> None:
                if stop is not None and stop.is_set():
                    raise training.StopRequested(f"stopped by request while refining trial {trial.number}")
                now = time.monotonic()
                if now - checked[0] >= CLAIM_REFRESH_SECONDS:
                    checked[0] = now
                    if projects.stop_requested(project):
                        raise training.StopRequested(f"stopped by request while refining trial {trial.number}")
                    claim(url, trial_id, worker, settings, epoch + 1, run_epochs, started=started)

            base = None if space.seed is None else int(space.seed) + trial.number
            begin = None
            if start == "search":  # the stored model of the search (or of an earlier refinement) goes on training
                stored = models.load(project, [trial.number] * seeds)  # none (no longer kept): from scratch
                begin = [network.standardised_net(m.model) for m in stored] or None
            trained, mean, std = training.train_configs(  # the seeds side by side in one graph
                data, params, epochs=run_epochs, patience=run_epochs, on_epoch=on_epoch, start=begin,
                seeds=[None if base is None else base + _SEED_STRIDE * j for j in range(seeds)])
            nets = [net for net, _ in trained]
            model = network.average_models(nets)
            r2 = training.fit_r2(model, x, y, mean, std)
            if not math.isfinite(r2):
                raise ProjectError(f"refining trial {trial.number} diverged (R² is not finite)")
            kept = run_epochs >= epochs or r2 >= trial.value  # a capped budget must not replace a better model
            if kept:
                models.save(project, trial.number, r2, network.with_target_scaling(model, mean, std), mean, std)
            seconds = round(time.perf_counter() - started, 3)
            optuna_rdb.set_finished_user_attrs(
                url, trial_id, {"refined": settings, "refined_r2": r2, "refined_s": seconds,
                                "refined_epochs": run_epochs, "refined_kept": kept},
            )
        finally:
            release(url, trial_id, worker)
        done.append(trial.number)
        if progress is not None:
            progress(len(done), len(todo),
                     f"trial {trial.number}: {run_epochs} epochs, R² {trial.value:.6f} -> {r2:.6f}"
                     f"{'' if kept else ' (search model kept)'} ({seconds:.0f} s)")
    models.keep_best(project, keep=max(top, space.keep_models))
    if tolerance is not None:
        models.drop_misfits(project, tolerance)
    return done


def refine_epochs(epochs: int, n_points: int, batch: int) -> int:
    """Epochs of one refined model: `epochs`, fewer when an epoch has more than MAX_STEPS_PER_EPOCH steps, more
    when it has fewer than MIN_STEPS_PER_EPOCH.

    The budget counts optimizer steps (epochs x MIN_STEPS_PER_EPOCH to epochs x MAX_STEPS_PER_EPOCH), so 30 000
    points do not cost 37x 808, and 280 points in batches of 256 (2 steps an epoch) get 4000 steps at 500
    epochs, not 1000: the networks' fit of a sharp transition is then still improving (README, session 21).
    """
    steps = math.ceil(n_points / max(1, min(int(batch), n_points)))
    if steps > MAX_STEPS_PER_EPOCH:
        return max(1, math.ceil(epochs * MAX_STEPS_PER_EPOCH / steps))
    return max(1, int(epochs), math.ceil(epochs * MIN_STEPS_PER_EPOCH / steps))


def claim(url: str, trial_id: int, worker: str, settings: dict, done: int, total: int,
          started: float | None = None, key: str = _CLAIM) -> bool:
    """Claim (or refresh the claim on) a piece of work on a trial; False when another live process holds it.

    The claim is the trial's attribute `key` (``refining``: the trial's refinement), inserted under Optuna's
    unique (trial, key) constraint, so two processes cannot both win; a claim not refreshed for
    CLAIM_STALE_SECONDS (its process died) is taken over. It also carries the progress (epochs done of total)
    that :func:`refine_progress` reports.
    """
    now = time.time()
    value = json.dumps({"worker": worker, "settings": settings, "at": now, "done": done, "total": total,
                        "elapsed": 0.0 if started is None else time.perf_counter() - started})

    def take(conn) -> bool:
        old = optuna_rdb.user_attr_json(conn, trial_id, key)
        if old is not None:
            held = json.loads(old)
            if held.get("worker") != worker and now - float(held.get("at", 0)) < CLAIM_STALE_SECONDS:
                return False
            optuna_rdb.delete_user_attr(conn, trial_id, key, old)
        optuna_rdb.insert_user_attr(conn, trial_id, key, value)
        return True

    try:
        return storage.in_transaction(url, take)
    except sa.exc.IntegrityError:
        return False


def release(url: str, trial_id: int, worker: str, key: str = _CLAIM) -> None:
    """Drop this process's claim `key` on the trial (done, or stopped: another process may take it)."""
    def drop(conn) -> None:
        old = optuna_rdb.user_attr_json(conn, trial_id, key)
        if old is not None and json.loads(old).get("worker") == worker:
            optuna_rdb.delete_user_attr(conn, trial_id, key, old)

    storage.in_transaction(url, drop)


def refine_status(project: ProjectHandle) -> tuple[int, int]:
    """(how many of the default candidates are refined with the project's default settings, how many there are).

    (0, 0) when the project has refinement off or no finished trial yet.
    """
    p = refine_progress(project)
    return p["done"], p["total"]


def refine_progress(project: ProjectHandle) -> dict:
    """The refinement with the project's defaults: done, total, running (claimed now), fraction and eta_s.

    `fraction` counts the epochs of configurations in training; `eta_s` (None until one is measured) divides the
    remaining work by the processes refining now. All zero when the project has refinement off.
    """
    space = project.space
    out = {"done": 0, "total": 0, "running": 0, "fraction": 1.0, "eta_s": None}
    if not space.refinement_epochs:
        return out
    _, candidates, epochs = plan(space)
    settings = refine_settings(epochs)
    chosen = _candidates(project, candidates)
    now = time.time()
    done = [t for t in chosen if covers(t.user_attrs.get("refined"), settings)]
    claims = [c for t in chosen if not covers(t.user_attrs.get("refined"), settings)
              for c in [t.user_attrs.get(_CLAIM)]
              if c and c.get("settings") == settings and now - float(c.get("at", 0)) < CLAIM_STALE_SECONDS]
    partial = sum(c["done"] / c["total"] for c in claims if c.get("total"))
    total = len(chosen)
    out.update(done=len(done), total=total, running=len(claims),
               fraction=(len(done) + partial) / total if total else 1.0)
    per_model = [float(t.user_attrs["refined_s"]) for t in done if "refined_s" in t.user_attrs]
    per_model += [c["elapsed"] / (c["done"] / c["total"]) for c in claims if c.get("done") and c.get("total")]
    if per_model and total:
        remaining = total - len(done) - partial
        out["eta_s"] = max(0.0, remaining * sum(per_model) / len(per_model) / max(1, len(claims)))
    return out


def refined_trials(project: ProjectHandle) -> dict[int, dict]:
    """{trial number: its refinement attributes} for the trials whose stored model is a refined one."""
    stored = models.values(project)
    study = project.study()
    return {
        t.number: {k: v for k, v in t.user_attrs.items() if k.startswith("refined")}
        for t in study.get_trials(deepcopy=False)
        if t.number in stored and "refined" in t.user_attrs and t.user_attrs.get("refined_kept", True)
    }
