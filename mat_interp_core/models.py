"""The stored models of a project (the ``models`` table): save, keep the best, rank, load.

The only module that reads or writes ``storage.models``, but for
:func:`mat_interp_core.projects.delete_project`, which drops a project's rows of every table at once. A row is
one trial's network (Y in the user's units) with its value, the training R² (the search's, or the refined one
after :func:`mat_interp_core.refine.refine_project`). Rows with trial numbers < 0 are the held-out fold models
of :mod:`mat_interp_core.uncertainty`: never ranked, kept or counted as the project's models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from mat_interp_core import network, storage
from mat_interp_core.projects import ProjectError, ProjectHandle

__all__ = ["TrainedModel", "save", "keep_best", "values", "ranked", "load", "load_best", "best_bytes",
           "drop_misfits"]


@dataclass
class TrainedModel:
    """A stored network; ``predict`` returns Y in the user's units."""

    trial_number: int
    value: float
    model: object

    name = "network"

    def predict(self, x1, x2) -> np.ndarray:
        x1 = np.asarray(x1, dtype="float64")
        x2 = np.broadcast_to(np.asarray(x2, dtype="float64"), x1.shape)
        x = np.stack([x1.ravel(), x2.ravel()], axis=1)
        return network.predict_std(self.model, x).reshape(x1.shape)


def _no_models(project: ProjectHandle) -> ProjectError:
    return ProjectError(f"project {project.name!r} has no finished trial with a model yet; train it first")


# --------------------------------------------------------------------------- writing


def save(project: ProjectHandle, trial_number: int, value: float, model, mean: float, std: float) -> None:
    """Store (or replace) the trial's model with its value."""
    blob = network.model_to_bytes(model)
    m = storage.models

    def replace(conn) -> None:
        conn.execute(m.delete().where(m.c.project_id == project.id, m.c.trial_number == trial_number))
        conn.execute(m.insert().values(project_id=project.id, trial_number=trial_number, value=value, y_mean=mean,
                                       y_std=std, keras=blob))

    storage.in_transaction(project.url, replace)


def keep_best(project: ProjectHandle, keep: int | None = None) -> None:
    """Drop all but the best ``keep`` (default: the project's keep_models) stored models by their value."""
    m = storage.models

    def drop_rest(conn) -> None:
        ranked = conn.execute(
            sa.select(m.c.trial_number).where(m.c.project_id == project.id, m.c.trial_number >= 0)  # < 0: folds
            .order_by(m.c.value.desc())
        ).scalars().all()
        drop = ranked[keep or project.space.keep_models :]
        if drop:
            conn.execute(m.delete().where(m.c.project_id == project.id, m.c.trial_number.in_(drop)))

    storage.in_transaction(project.url, drop_rest)


def drop_misfits(project: ProjectHandle, tolerance: float) -> None:
    """Delete the stored models whose misfit 1 - R² exceeds `tolerance` x the best one's."""
    m = storage.models

    def drop(conn) -> None:
        best = conn.execute(sa.select(sa.func.max(m.c.value)).where(m.c.project_id == project.id,
                                                                    m.c.trial_number >= 0)).scalar()
        if best is None or not math.isfinite(best):
            return
        floor = 1.0 - tolerance * (1.0 - best)
        conn.execute(m.delete().where(m.c.project_id == project.id, m.c.trial_number >= 0, m.c.value < floor))

    storage.in_transaction(project.url, drop)


# --------------------------------------------------------------------------- reading


def values(project: ProjectHandle) -> dict[int, float]:
    """{trial number: training R² of its stored model} (the refined R² once refined, so it tells versions apart)."""
    m = storage.models
    with storage.get_engine(project.url).connect() as conn:
        return dict(conn.execute(sa.select(m.c.trial_number, m.c.value).where(
            m.c.project_id == project.id, m.c.trial_number >= 0)).all())  # < 0: uncertainty's held-out folds


def ranked(project: ProjectHandle, stored: dict[int, float] | None = None) -> list[int]:
    """Numbers of COMPLETE trials that have a stored model, best first.

    Ranked by the stored model's training R² (the search's, or the refined
    one after :func:`mat_interp_core.refine.refine_project`). With the
    'holdout' objective, trials with a held-out score rank first by it.
    `stored`: :func:`values`, when the caller has read them already.
    """
    from optuna.trial import TrialState
    complete = {t.number: t for t in project.trials(max_age=project.TRIALS_MAX_AGE_S)
                if t.state == TrialState.COMPLETE}
    stored = values(project) if stored is None else stored
    numbers = [n for n in stored if n in complete]

    def key(n: int):
        holdout = complete[n].user_attrs.get("holdout_rmse")
        if project.space.objective == "holdout" and holdout is not None:
            return (0, holdout)
        value = stored[n]
        return (1, -(value if value is not None and np.isfinite(value) else -np.inf))

    return sorted(numbers, key=key)


def load(project: ProjectHandle, numbers) -> list[TrainedModel]:
    """The stored models of the given trials, in the given order (trials without a model are skipped)."""
    numbers = [int(n) for n in numbers]
    m = storage.models
    with storage.get_engine(project.url).connect() as conn:
        rows = {
            r.trial_number: r
            for r in conn.execute(
                sa.select(m.c.trial_number, m.c.value, m.c.keras).where(
                    m.c.project_id == project.id, m.c.trial_number.in_(numbers)
                )
            )
        }
    return [TrainedModel(n, rows[n].value, network.model_from_bytes(rows[n].keras)) for n in numbers if n in rows]


def load_best(project: ProjectHandle, k: int = 1) -> list[TrainedModel]:
    """The best ``k`` stored models of the project (fewer if fewer exist)."""
    numbers = ranked(project)[: max(1, int(k))]
    if not numbers:
        raise _no_models(project)
    return load(project, numbers)


def best_bytes(project: ProjectHandle) -> bytes:
    """The ``.keras`` file of the best model (predict gives Y in the user's units)."""
    numbers = ranked(project)
    if not numbers:
        raise _no_models(project)
    m = storage.models
    with storage.get_engine(project.url).connect() as conn:
        return conn.execute(
            sa.select(m.c.keras).where(m.c.project_id == project.id, m.c.trial_number == numbers[0])
        ).scalar_one()
