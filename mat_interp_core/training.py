"""One trial: fit, per-epoch curves into the database, pruning, early stop, saving the model.

Cost of recording: curves are buffered and written in one INSERT about once a
second, and Optuna hears only the epochs at which the successive-halving
pruner decides (min_resource x reduction_factor^k). Each write costs ~10 ms,
so per-epoch bookkeeping stays far below the few ms an epoch takes.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from typing import Callable

import numpy as np
import sqlalchemy as sa

from mat_interp_core import isotherms, models, network, refine, storage
from mat_interp_core.dataset import TrainingData
from mat_interp_core.projects import ProjectHandle, stop_requested

FLUSH_SECONDS = 1.0
SEARCH_MAX_STEPS = refine.MAX_STEPS_PER_EPOCH  # a search epoch on large data: at most this many batches (README)
SEARCH_CAPPED_FROM = 4096  # points: large data (batches of 256-1024); the family's magnets (<= ~3000) stay below


def search_max_steps(n_points: int) -> int | None:
    """Optimizer steps a search epoch takes at most on `n_points` (None: a whole pass). From SEARCH_CAPPED_FROM
    points, the refinement's MAX_STEPS_PER_EPOCH: the search's budget counts optimizer steps there as the
    refinement's does, so 30 000 points do not cost a whole pass an epoch. Below it a whole pass: the family's
    magnets (at most ~3000 points) did not show the cap to be harmless to |ΔS_M| (README, speed)."""
    return SEARCH_MAX_STEPS if n_points >= SEARCH_CAPPED_FROM else None


class StopRequested(Exception):
    """The user (or a signal) asked the workers to stop; the trial ends as FAIL."""


class CurveRecorder:
    """Buffers (epoch, loss, r2) rows and writes them in batches."""

    def __init__(self, url: str, project_id: int, trial_number: int, flush_seconds: float = FLUSH_SECONDS):
        self._url, self._pid, self._trial = url, project_id, trial_number
        self._rows: list[dict] = []
        self._flush_seconds = flush_seconds
        self._last = time.monotonic()
        self.write_seconds = 0.0  # time spent writing, for the speed report

    def add(self, epoch: int, loss: float) -> None:
        self._rows.append(
            {"project_id": self._pid, "trial_number": self._trial, "epoch": epoch, "loss": loss, "r2": network.r2_from_loss(loss)}
        )

    def due(self) -> bool:
        return time.monotonic() - self._last >= self._flush_seconds

    def flush(self) -> None:
        self._last = time.monotonic()
        if not self._rows:
            return
        started = time.perf_counter()
        with storage.get_engine(self._url).begin() as conn:
            conn.execute(storage.curves.insert(), self._rows)
        self._rows = []
        self.write_seconds += time.perf_counter() - started


def rung_epochs(min_resource: int, reduction_factor: int, epochs: int) -> set[int]:
    """Epoch counts at which the successive-halving pruner can decide."""
    out, step = set(), min_resource
    while step <= epochs:
        out.add(step)
        step *= reduction_factor
    return out


def standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mean, std = float(np.mean(y)), float(np.std(y))
    return (y - mean) / std, mean, std


def train_config(
    data: TrainingData,
    params: dict,
    *,
    epochs: int,
    patience: int,
    seed: int | None = None,
    holdout_x2: float | None = None,
    rows: np.ndarray | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    max_steps: int | None = None,
):
    """Train one configuration; returns (model in standardised units, FitResult, y_mean, y_std).

    ``holdout_x2`` leaves the rows of that X2 set point out of the training data (validation); ``rows`` (a
    boolean mask) trains on those rows only; ``max_steps``: optimizer steps an epoch at most
    (:func:`network.fit_many`).
    """
    keep = None if rows is None else np.asarray(rows, dtype=bool).copy()
    if holdout_x2 is not None:
        keep = (np.ones(len(data.arrays()[1]), dtype=bool) if keep is None else keep) & ~data.set_points.mask(holdout_x2)
    [(model, result)], mean, std = train_configs(data, params, epochs=epochs, patience=patience, seeds=[seed],
                                               rows=None if keep is None else [keep], on_epoch=on_epoch,
                                               max_steps=max_steps)
    return model, result, mean, std


def train_configs(
    data: TrainingData,
    params: dict,
    *,
    epochs: int,
    patience: int,
    seeds: list,
    rows: list | None = None,
    start: list | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    max_steps: int | None = None,
):
    """Train networks of one configuration side by side (:func:`network.fit_many`): one per seed, network i on
    the rows ``rows[i]`` (boolean masks; None: every row). Returns ([(model, FitResult)], y_mean, y_std): the
    models predict the target standardised with the mean and std of the rows any of them trains on. ``start``:
    networks (standardised units, as :func:`network.standardised_net` gives them) that go on training instead
    of new ones."""
    keras = network.keras_ready()

    x, y = data.arrays()
    k = len(seeds)
    masks = np.ones((k, len(y)), dtype=bool) if rows is None else np.array([np.asarray(r, dtype=bool) for r in rows])
    used = masks.any(axis=0)
    if not used.all():
        x, y, masks = x[used], y[used], masks[:, used]
    y_std, mean, std = standardise(y)
    nets = list(start or [])
    for seed, mask in list(zip(seeds, masks))[len(nets):]:
        if seed is not None:
            keras.utils.set_random_seed(int(seed))
        nets.append(network.build_model(params["layers"], params["nodes"], x[mask], params.get("x2_transform", "linear"),
                                        params.get("transform_column", 1)))
    results = network.fit_many(
        nets,
        x,
        y_std,
        solver=params["solver"],
        lr=params["lr"],
        batch_size=params["batch"],
        epochs=epochs,
        patience=patience,
        seed=seeds[0],
        weights=None if masks.all() else masks,
        on_epoch=on_epoch,
        max_steps=max_steps,
    )
    return list(zip(nets, results)), mean, std


def make_objective(project: ProjectHandle, stop_event: threading.Event):
    """The Optuna objective of ``project``: training R² of the restored best epoch."""
    import optuna

    url, space, data = project.url, project.space, project.data
    column = 0 if isotherms.is_isotherm(project.units) else 1  # the transform goes on the field (X1 of isotherms)
    rungs = rung_epochs(space.min_resource, space.reduction_factor, space.epochs)
    x, y = data.arrays()

    def objective(trial: "optuna.Trial") -> float:
        try:
            return run(trial)
        except optuna.TrialPruned:
            raise
        except Exception as err:  # the trial fails; say why in its table row (a stop, a diverged fit, ...)
            if "error" not in trial.user_attrs:
                try:
                    trial.set_user_attr("error", (storage.describe_error(err) if isinstance(err, sa.exc.SQLAlchemyError)
                                                  else str(err) or type(err).__name__)[:500])
                except Exception:  # noqa: BLE001 - the database may be the reason; the FAIL is recorded anyway
                    pass
            raise

    def run(trial: "optuna.Trial") -> float:
        params = space.suggest(trial, len(x))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("x2_transform", params["x2_transform"])  # refinement and validation retrain with it
        if column != 1:
            params["transform_column"] = column
            trial.set_user_attr("transform_column", column)
        recorder = CurveRecorder(url, project.id, trial.number)
        started = time.perf_counter()

        def on_epoch(epoch: int, loss: float) -> None:
            done = epoch + 1
            recorder.add(done, loss)
            if done in rungs:
                trial.report(network.r2_from_loss(loss), step=done)
                if trial.should_prune():
                    recorder.flush()
                    trial.set_user_attr("epochs", done)
                    raise optuna.TrialPruned(f"pruned at epoch {done}")
            if recorder.due():
                recorder.flush()
                if stop_event.is_set() or stop_requested(project):
                    raise StopRequested(f"stopped by request at epoch {done}")
            elif stop_event.is_set():
                raise StopRequested(f"stopped by request at epoch {done}")

        seed = None if space.seed is None else int(space.seed) + trial.number
        try:
            model, result, mean, std = train_config(
                data, params, epochs=space.epochs, patience=space.patience, seed=seed, on_epoch=on_epoch,
                max_steps=search_max_steps(len(x)),
            )
            recorder.flush()
        finally:
            trial.set_user_attr("train_s", round(time.perf_counter() - started, 3))
            trial.set_user_attr("curve_write_s", round(recorder.write_seconds, 4))
        trial.set_user_attr("epochs", result.epochs)
        trial.set_user_attr("best_epoch", result.best_epoch + 1)
        if not result.loss or not math.isfinite(result.loss[-1]) and result.best_epoch < 0:
            raise ValueError("training diverged (loss is not finite)")
        r2 = fit_r2(model, x, y, mean, std)
        if not math.isfinite(r2):
            raise ValueError("training diverged (R² is not finite)")
        try:
            models.save(project, trial.number, r2, network.with_target_scaling(model, mean, std), mean, std)
            models.keep_best(project)
        except sa.exc.SQLAlchemyError as err:
            message = f"the trained model could not be stored: {_short(err)}"
            trial.set_user_attr("error", message)
            raise RuntimeError(message) from None
        return r2

    return objective


def _short(err: Exception) -> str:
    return storage.describe_error(err)  # the first database error, not a failed ROLLBACK after it


def fit_r2(model, x: np.ndarray, y: np.ndarray, mean: float, std: float) -> float:
    """Training R² of a network trained on standardised targets (``mean``, ``std``), in the data's units."""
    pred = network.predict_std(model, x) * std + mean
    return 1.0 - float(np.sum((y - pred) ** 2) / np.sum((y - np.mean(y)) ** 2))
