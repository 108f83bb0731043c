"""Projects: one validated dataset, its settings and one Optuna study named after it.

A project is resolved once where it enters (a CLI argument, the page's project picker, a worker's pick)
with :func:`open_project`, and the :class:`ProjectHandle` it returns is what every library function takes.
Functions that reach the database raise ``storage.DatabaseUnavailable`` when the server cannot be reached
(transient: try again later).
"""

from __future__ import annotations

import json
import math
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from mat_interp_core import storage
from mat_interp_core.dataset import TrainingData, validate_project_name
from mat_interp_core.space import SearchSpace


class ProjectError(ValueError):
    """A project that does not exist, exists already, or cannot do what was asked."""


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    created_at: float
    x1_name: str
    x2_name: str
    y_name: str
    n_rows: int
    units: dict[str, Any]
    space: SearchSpace
    n_trials: int
    stop_requested: bool


def _row_to_project(row) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        x1_name=row.x1_name,
        x2_name=row.x2_name,
        y_name=row.y_name,
        n_rows=row.n_rows,
        units=json.loads(row.units),
        space=SearchSpace.from_dict(json.loads(row.space)),
        n_trials=row.n_trials,
        stop_requested=bool(row.stop_requested),
    )


class ProjectHandle:
    """One project resolved once and passed down: the database URL, the stored record (its fields read through,
    ``project.space``, ``project.id``, ...), the training data loaded at most once, and the trial
    list cached for a few seconds for the readers a polling page calls several times per refresh.

    The record is read when the handle is made; :meth:`reload` reads it again (the target, the stop request and the
    units change while workers run)."""

    TRIALS_MAX_AGE_S = 2.0

    def __init__(self, url: str, record: Project):
        self.url = url
        self.record = record
        self._data: TrainingData | None = None
        self._trials: tuple[float, list] | None = None

    def __getattr__(self, attr: str):
        if attr.startswith("_") or attr in ("url", "record"):
            raise AttributeError(attr)
        return getattr(self.record, attr)

    def __repr__(self) -> str:
        return f"ProjectHandle({self.record.name!r})"

    def reload(self) -> "ProjectHandle":
        """Read the stored record again and forget the cached trials."""
        self.record = _read_record(self.url, self.record.name)
        self._trials = None
        return self

    @property
    def data(self) -> TrainingData:
        """The project's training data (read once per handle)."""
        if self._data is None:
            self._data = _read_data(self.url, self.record)
        return self._data

    def study(self, salt: int = 0):
        """The project's Optuna study with the project's sampler and pruner (`salt` shifts the sampler's seed).

        Loaded on each call, not kept: Optuna caches finished trials per loaded study, and the refinement and
        the validation write attributes of finished trials behind its back."""
        return _load_study(self.url, self.record, salt)

    def trials(self, max_age: float = 0.0) -> list:
        """The study's trials; with `max_age` > 0 a list read less than that many seconds ago is reused."""
        now = time.monotonic()
        if max_age <= 0 or self._trials is None or now - self._trials[0] > max_age:
            self._trials = (now, self.study().get_trials(deepcopy=False))
        return self._trials[1]


def _sampler_and_pruner(space: SearchSpace, salt: int = 0):
    import optuna

    seed = None if space.seed is None else int(space.seed) + salt
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.SuccessiveHalvingPruner(
        min_resource=space.min_resource, reduction_factor=space.reduction_factor
    )
    return sampler, pruner


@storage.reports_unavailable
def _load_study(url: str, project: Project, salt: int = 0):
    import optuna

    sampler, pruner = _sampler_and_pruner(project.space, salt)
    return optuna.load_study(study_name=project.name, storage=storage.optuna_storage(url), sampler=sampler,
                             pruner=pruner)


@storage.reports_unavailable
def create_project(
    url: str,
    name: str,
    data: TrainingData,
    *,
    space: SearchSpace | None = None,
    n_trials: int = 30,
    units: dict[str, Any] | None = None,
) -> Project:
    """Store the project, its data and its study; nothing is left behind if any step fails."""
    import optuna

    name = validate_project_name(name)
    space = space or SearchSpace()
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ProjectError(f"the number of trials must be a whole number >= 1; got {n_trials!r}")
    storage.init_database(url)
    engine = storage.get_engine(url)
    if name in optuna.get_all_study_names(storage.optuna_storage(url)) or _find(engine, name) is not None:
        raise ProjectError(f"a project named {name!r} exists already; continue it with --more N or pick another name")
    blob = data.to_csv_bytes()
    limit = storage.blob_limit(url)
    if limit is not None and len(blob) > limit:
        raise ProjectError(
            f"the data of project {name!r} ({len(data.frame):,} rows) takes {len(blob) / 2**20:.1f} MB as stored, more "
            f"than the {max(0, limit) / 2**20:.1f} MB this database accepts in one statement (the server's "
            "max_allowed_packet holds twice that): ask its administrator to raise max_allowed_packet, or use fewer rows"
        )
    # the study first: a project is listed (and served to workers) only once its study exists
    sampler, pruner = _sampler_and_pruner(space)
    try:
        optuna.create_study(
            study_name=name, storage=storage.optuna_storage(url), direction="maximize", sampler=sampler, pruner=pruner
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise ProjectError(f"a project named {name!r} exists already") from None
    try:
        with engine.begin() as conn:
            try:
                pid = conn.execute(
                    storage.projects.insert().values(
                        name=name,
                        created_at=time.time(),
                        x1_name=data.x1_name,
                        x2_name=data.x2_name,
                        y_name=data.y_name,
                        n_rows=len(data.frame),
                        units=json.dumps(units or {}),
                        space=json.dumps(space.to_dict()),
                        n_trials=n_trials,
                        stop_requested=False,
                    )
                ).inserted_primary_key[0]
            except sa.exc.IntegrityError:
                raise ProjectError(f"a project named {name!r} exists already") from None
            conn.execute(storage.datasets.insert().values(project_id=pid, csv=blob))
    except BaseException:
        optuna.delete_study(study_name=name, storage=storage.optuna_storage(url))  # leave no half-created project
        raise
    return open_project(url, name)


def _find(engine: sa.Engine, name: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(storage.projects).where(storage.projects.c.name == name)).first()


def open_project(url: str, name: str) -> ProjectHandle:
    """The project `name` in the database at `url`, resolved once: the handle every library function takes."""
    return ProjectHandle(url, _read_record(url, name))


@storage.reports_unavailable
def _read_record(url: str, name: str) -> Project:
    storage.init_database(url)
    row = _find(storage.get_engine(url), name)
    if row is None:
        known = [p.name for p in list_projects(url)]
        hint = f"; known projects: {', '.join(known)}" if known else "; there are no projects yet"
        raise ProjectError(f"no project named {name!r}{hint}")
    return _row_to_project(row)


@storage.reports_unavailable
def list_projects(url: str) -> list[Project]:
    storage.init_database(url)
    with storage.get_engine(url).connect() as conn:
        rows = conn.execute(sa.select(storage.projects).order_by(storage.projects.c.created_at)).all()
    return [_row_to_project(r) for r in rows]


@storage.reports_unavailable
def _read_data(url: str, project: Project) -> TrainingData:
    with storage.get_engine(url).connect() as conn:
        blob = conn.execute(
            sa.select(storage.datasets.c.csv).where(storage.datasets.c.project_id == project.id)
        ).scalar_one()
    tol = (project.units or {}).get("set_point_tol")
    kwargs = {} if tol is None else {"set_point_tol": float(tol)}
    return TrainingData.from_csv_bytes(blob, project.x1_name, project.x2_name, project.y_name, **kwargs)


@storage.reports_unavailable
def add_trials(project: ProjectHandle, more: int) -> ProjectHandle:
    """Ask for ``more`` trials on top of the current target and clear a stop request."""
    if not isinstance(more, int) or more < 0:
        raise ProjectError(f"the number of more trials must be a whole number >= 0; got {more!r}")
    project.reload()
    with storage.get_engine(project.url).begin() as conn:
        conn.execute(
            storage.projects.update()
            .where(storage.projects.c.id == project.id)
            .values(n_trials=project.n_trials + more, stop_requested=False)
        )
    return project.reload()


@storage.reports_unavailable
def request_stop(project: ProjectHandle) -> None:
    """Ask every worker of the project, on any machine, to stop after its current epoch."""
    with storage.get_engine(project.url).begin() as conn:
        conn.execute(
            storage.projects.update().where(storage.projects.c.id == project.id).values(stop_requested=True)
        )


@storage.reports_unavailable
def stop_requested(project: ProjectHandle) -> bool:
    """Whether a stop was asked for (read from the database each time; a deleted project stops its workers)."""
    with storage.get_engine(project.url).connect() as conn:
        value = conn.execute(
            sa.select(storage.projects.c.stop_requested).where(storage.projects.c.id == project.id)
        ).scalar()
    return bool(value) if value is not None else True


@storage.reports_unavailable
def delete_project(project: ProjectHandle) -> None:
    """Remove the project's study, data, curves and models, and nothing else."""
    import optuna

    url, name = project.url, project.name
    engine = storage.get_engine(url)
    with engine.begin() as conn:
        for table in (storage.curves, storage.models, storage.datasets):
            conn.execute(table.delete().where(table.c.project_id == project.id))
        conn.execute(storage.projects.delete().where(storage.projects.c.id == project.id))
    try:
        optuna.delete_study(study_name=name, storage=storage.optuna_storage(url))
    except KeyError:
        pass


# ---------------------------------------------------------------- reading the study


@storage.reports_unavailable
def trials_frame(project: ProjectHandle) -> pd.DataFrame:
    """One row per trial: number, state, R², hyper-parameters, epochs, duration, errors."""
    rows = []
    trials = project.trials(max_age=project.TRIALS_MAX_AGE_S)
    retried = {t.system_attrs["failed_trial"]: t.number for t in trials if "failed_trial" in t.system_attrs}
    for t in trials:
        note = t.user_attrs.get("error")
        if t.number in retried and not note:
            note = f"its worker stopped answering (no heartbeat); retried as trial {retried[t.number]}"
        duration = None
        if t.datetime_start is not None:
            end = t.datetime_complete
            duration = ((end.timestamp() if end else time.time()) - t.datetime_start.timestamp())
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "R2": t.value,
                "layers": t.params.get("layers"),
                "nodes": t.params.get("nodes"),
                "lr": t.params.get("lr"),
                "batch": t.params.get("batch"),
                "solver": t.params.get("solver", t.user_attrs.get("solver")),
                "epochs": t.user_attrs.get("epochs", t.last_step),
                "duration_s": duration,
                "holdout_rmse": t.user_attrs.get("holdout_rmse"),
                "note": note,
            }
        )
    columns = ["trial", "state", "R2", "layers", "nodes", "lr", "batch", "solver", "epochs", "duration_s", "holdout_rmse", "note"]
    return pd.DataFrame(rows, columns=columns)


@storage.reports_unavailable
def progress(project: ProjectHandle) -> dict[str, Any]:
    """Counts by state, the target, best trial, elapsed time and an ETA, from the database alone."""
    from optuna.trial import TrialState

    project.reload()
    trials = project.trials()
    counts = {s.name: 0 for s in TrialState}
    for t in trials:
        counts[t.state.name] += 1
    finished = counts["COMPLETE"] + counts["PRUNED"]
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]
    best = max(complete, key=lambda t: t.value) if complete else None
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start]
    ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete]
    running = counts["RUNNING"] + counts["WAITING"]
    active = running > 0 and finished < project.n_trials and not project.stop_requested
    elapsed = 0.0
    if starts:
        elapsed = (time.time() if active or not ends else max(ends)) - min(starts)
    eta = None
    if finished and finished < project.n_trials and elapsed > 0:
        eta = elapsed / finished * (project.n_trials - finished)
    return {
        "target": project.n_trials,
        "finished": finished,
        "complete": counts["COMPLETE"],
        "pruned": counts["PRUNED"],
        "failed": counts["FAIL"],
        "running": counts["RUNNING"],
        "waiting": counts["WAITING"],
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "best_params": dict(best.params) if best else {},
        "elapsed_s": elapsed,
        "eta_s": eta,
        "done": finished >= project.n_trials,
        "stop_requested": project.stop_requested,
    }


_FINISHED = ("COMPLETE", "PRUNED", "FAIL")
_CURVES: dict[tuple, dict[int, pd.DataFrame]] = {}  # (url, project id, created_at) -> finished trials' curves
_CURVES_LOCK = threading.Lock()
_CURVES_PROJECTS = 16  # projects whose finished curves this process keeps


@storage.reports_unavailable
def curves_frame(project: ProjectHandle, max_points: int | None = None) -> pd.DataFrame:
    """Per-epoch training curves of every trial (trial, epoch, loss, r2, state) from our table.

    A finished trial's curve never changes, so this process reads it once (a polling page then reads only the
    running trials' rows). ``max_points``: each curve thinned to about that many epochs, its first, last and
    best kept (what a plot needs; None: every epoch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        states = {t.number: t.state.name for t in project.trials(max_age=project.TRIALS_MAX_AGE_S)}
    key = (project.url, project.id, project.created_at)
    with _CURVES_LOCK:
        cached = _CURVES[key] = _CURVES.pop(key, {})  # the last used last: the first one goes when over
        while len(_CURVES) > _CURVES_PROJECTS:
            _CURVES.pop(next(iter(_CURVES)))
        known = dict(cached)
    c = storage.curves.c
    query = sa.select(c.trial_number, c.epoch, c.loss, c.r2).where(c.project_id == project.id)
    if known:
        query = query.where(c.trial_number.not_in(list(known)))
    with storage.get_engine(project.url).connect() as conn:
        rows = conn.execute(query.order_by(c.trial_number, c.epoch)).all()
    fresh = pd.DataFrame(rows, columns=["trial", "epoch", "loss", "r2"])
    parts = dict(known)
    for trial, part in fresh.groupby("trial", sort=False):
        parts[int(trial)] = part
        if states.get(int(trial)) in _FINISHED:  # finished before the rows were read: final
            with _CURVES_LOCK:
                cached[int(trial)] = part
    frame = pd.concat([parts[t] for t in sorted(parts)], ignore_index=True) if parts else fresh
    if max_points and len(frame):
        n = frame.groupby("trial")["epoch"].transform("size").to_numpy()
        step = -(-n // int(max_points))
        pos = frame.groupby("trial").cumcount().to_numpy()
        best = (frame["r2"] == frame.groupby("trial")["r2"].transform("max")).to_numpy()
        frame = frame[(pos % step == 0) | (pos == n - 1) | best].reset_index(drop=True)
    frame["state"] = frame["trial"].map(states).fillna("UNKNOWN")
    return frame
