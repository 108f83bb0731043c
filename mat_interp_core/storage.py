"""The one database: SQLAlchemy engine, our tables, and Optuna's RDB storage.

Optuna's tables hold the studies and trials; ours hold what Optuna does not:
the project's settings and units, the training data, per-epoch curves and the
trained models. A worker on another machine needs only the URL.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

_Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_Text = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

metadata = sa.MetaData()

projects = sa.Table(
    "mi_projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("x1_name", sa.String(255), nullable=False),
    sa.Column("x2_name", sa.String(255), nullable=False),
    sa.Column("y_name", sa.String(255), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("units", _Text, nullable=False),  # JSON: units, sample mass, magnetisation flag
    sa.Column("space", _Text, nullable=False),  # JSON: SearchSpace.to_dict()
    sa.Column("n_trials", sa.Integer, nullable=False),  # finished trials wanted (COMPLETE + PRUNED)
    sa.Column("stop_requested", sa.Boolean, nullable=False, default=False),
)

datasets = sa.Table(
    "mi_datasets",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("mi_projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("csv", _Blob, nullable=False),
)

models = sa.Table(
    "mi_models",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("mi_projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("trial_number", sa.Integer, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),  # the trial's objective value (training R²)
    sa.Column("y_mean", sa.Float, nullable=False),
    sa.Column("y_std", sa.Float, nullable=False),
    sa.Column("keras", _Blob, nullable=False),  # .keras bytes, target scaling included
)

curves = sa.Table(
    "mi_curves",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("mi_projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("trial_number", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("loss", sa.Float, nullable=False),
    sa.Column("r2", sa.Float, nullable=False),
)

_ENGINES: dict[str, sa.Engine] = {}


def heartbeat_seconds() -> tuple[int, int]:
    """(heartbeat interval, grace period) from MAT_INTERP_HEARTBEAT (default 5 s, grace 4x)."""
    interval = max(1, int(float(os.environ.get("MAT_INTERP_HEARTBEAT", "5"))))
    return interval, 4 * interval


def _engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, "pool_recycle": 3600}


def get_engine(url: str) -> sa.Engine:
    """One engine per URL and process (SQLite files get WAL and a long lock timeout)."""
    engine = _ENGINES.get(url)
    if engine is None:
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **_engine_kwargs(url))
        if url.startswith("sqlite"):

            @sa.event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=60000")
                cur.close()

        _ENGINES[url] = engine
    return engine


def optuna_storage(url: str):
    """Optuna's RDBStorage with heartbeat and retry of stale trials (killed workers)."""
    import optuna

    interval, grace = heartbeat_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=_engine_kwargs(url),
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )


def init_database(url: str, attempts: int = 8) -> None:
    """Create our tables and Optuna's once; safe when several processes race on an empty database."""
    engine = get_engine(url)
    for attempt in range(attempts):
        try:
            if url.startswith("sqlite"):
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            metadata.create_all(engine, checkfirst=True)
            optuna_storage(url)
            return
        except (OperationalError, IntegrityError, ProgrammingError) as err:
            if not _is_creation_race(err) or attempt == attempts - 1:
                raise
            time.sleep(0.2 + random.random() * 0.5)  # another process is creating the same tables


def _is_creation_race(err: Exception) -> bool:
    text = str(err).lower()
    return any(
        s in text
        for s in ("already exists", "duplicate entry", "database is locked", "1050", "1062", "deadlock", "1213")
    )


def dispose_all() -> None:
    """Close every pooled connection of this process (tests, and after a fork)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
