"""The one database: SQLAlchemy engine, our tables, and Optuna's RDB storage.

Optuna's tables hold the studies and trials; ours hold what Optuna does not:
the project's settings and units, the training data, per-epoch curves and the
trained models. A worker on another machine needs only the URL.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
import warnings
from pathlib import Path
from typing import Callable, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from mat_interp_core.config import check_database_url, mask_url, private_dir
from mat_interp_core.dataset import MAX_NAME_CHARS

log = logging.getLogger("mat_interp.storage")

_Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
_Text = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

metadata = sa.MetaData()

projects = sa.Table(
    "mi_projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("x1_name", sa.String(MAX_NAME_CHARS), nullable=False),
    sa.Column("x2_name", sa.String(MAX_NAME_CHARS), nullable=False),
    sa.Column("y_name", sa.String(MAX_NAME_CHARS), nullable=False),
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


# ------------------------------------------------------------ an unreachable database


class DatabaseUnavailable(RuntimeError):
    """The database server cannot be reached now (stopped, restarting, network down).

    Transient: the same call may succeed later. The message shows the URL with
    its password masked.
    """

    def __init__(self, url: str, reason: str):
        self.url = mask_url(url)
        self.reason = reason
        super().__init__(f"the database {self.url} is unavailable: {reason}")


# MySQL/MariaDB client and server errors that mean "no usable connection right now":
# too many connections, shutdown in progress, connection killed, can't connect
# (socket, TCP, unknown host), server gone away, lost connection, disconnected.
_UNAVAILABLE_CODES = frozenset({1040, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031})


T = TypeVar("T")
_CONFLICT_CODES = frozenset({1205, 1213})  # MySQL/MariaDB lock wait timeout, deadlock: the transaction was rolled back


def is_conflict(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) is MySQL/MariaDB rolling a transaction back for a deadlock or a lock
    wait: two workers writing rows of one trial or project at once can deadlock on InnoDB's gap locks, and the
    server expects the transaction to be run again."""
    return any(isinstance(c, OperationalError) and _error_code(c) in _CONFLICT_CODES for c in _chain(err))


def retry_conflicts(action: Callable[[], T], attempts: int = 6) -> T:
    """``action()``, run again (with a jittered back-off) while it fails with :func:`is_conflict`."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as err:
            if not is_conflict(err) or attempt == attempts - 1:
                raise
            time.sleep((0.05 + 0.1 * random.random()) * 2 ** attempt)
    raise AssertionError("unreachable")


def in_transaction(url: str, work: Callable[[sa.Connection], T], attempts: int = 6) -> T:
    """``work(conn)`` in one transaction, its result returned; the whole transaction is run again on a conflict."""
    def run() -> T:
        with get_engine(url).begin() as conn:
            return work(conn)

    return retry_conflicts(run, attempts)


def _error_code(err: BaseException) -> int | None:
    args = getattr(getattr(err, "orig", None), "args", None) or ()
    return args[0] if args and isinstance(args[0], int) else None


def _chain(err: BaseException):
    """``err``, then what caused it, back to the first error (explicit causes, and
    implicit contexts unless suppressed with ``raise ... from None``)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None


def is_unavailable(err: BaseException) -> bool:
    """Whether ``err`` is, wraps, or was raised while handling a lost or refused database
    connection, rather than a problem with the statement.

    The chain matters: Optuna wraps driver errors in StorageInternalError, and
    Optuna 5.0's trial bookkeeping can even end in an UnboundLocalError raised
    while it handles the lost connection.
    """
    for current in _chain(err):
        if isinstance(current, DatabaseUnavailable):
            return True
        if isinstance(current, sa.exc.DBAPIError):
            if current.connection_invalidated or isinstance(current, sa.exc.InterfaceError):
                return True
            if isinstance(current, OperationalError) and _error_code(current) in _UNAVAILABLE_CODES:
                return True
        if isinstance(current, sa.exc.DisconnectionError):
            return True
    return False


def describe_error(err: BaseException) -> str:
    """One line naming the database error that started ``err``.

    A failed statement is often followed by a failed ROLLBACK on the same broken
    connection ("server has gone away"), which hides the cause; this walks back to
    the first driver error of the chain and returns its message.
    """
    first: BaseException = err
    for current in _chain(err):
        if isinstance(current, (sa.exc.DBAPIError, DatabaseUnavailable)):
            first = current
    if isinstance(first, DatabaseUnavailable):
        return first.reason
    text = str(getattr(first, "orig", None) or first).strip() or type(first).__name__
    return text.splitlines()[0][:300]


F = TypeVar("F", bound=Callable)


def reports_unavailable(func: F) -> F:
    """Decorator for ``func(url, ...)`` or ``func(project_handle, ...)``: a lost or refused connection becomes
    DatabaseUnavailable."""

    @functools.wraps(func)
    def wrapper(target, *args, **kwargs):
        try:
            return func(target, *args, **kwargs)
        except DatabaseUnavailable:
            raise
        except Exception as err:
            if is_unavailable(err):
                raise DatabaseUnavailable(getattr(target, "url", target), describe_error(err)) from err
            raise

    return wrapper  # type: ignore[return-value]


def heartbeat_seconds() -> tuple[int, int]:
    """(heartbeat interval, grace period) from MAT_INTERP_HEARTBEAT (default 5 s, grace 4x)."""
    interval = max(1, int(float(os.environ.get("MAT_INTERP_HEARTBEAT", "5"))))
    return interval, 4 * interval


def _engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, "pool_recycle": 3600}


@reports_unavailable
def blob_limit(url: str) -> int | None:
    """The largest blob one INSERT can carry to this database; None when there is no practical bound (SQLite).

    MySQL/MariaDB refuse a statement over the server's max_allowed_packet (16 MB by
    default on MariaDB, 64 MB on MySQL 8.4), and PyMySQL sends bytes hex-encoded,
    twice their size. The lower of this session's and the global value counts: every
    worker's new connection gets the global one, and reads the blob back under it.
    """
    engine = get_engine(url)
    if engine.dialect.name not in ("mysql", "mariadb"):
        return None
    with engine.connect() as conn:
        packet = conn.exec_driver_sql("SELECT LEAST(@@SESSION.max_allowed_packet, @@GLOBAL.max_allowed_packet)")
        return int(packet.scalar_one()) // 2 - 1024


def _create_private_file(path: str | None) -> None:
    """A new SQLite database file (and its folders) readable by its owner only; SQLite gives its
    -wal and -shm files the database file's permissions."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path).expanduser()
    private_dir(file.parent)
    try:
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def get_engine(url: str) -> sa.Engine:
    """One engine per URL and process (SQLite files get WAL and a long lock timeout)."""
    engine = _ENGINES.get(url)
    if engine is None:
        check_database_url(url)
        if url.startswith("sqlite:///"):
            _create_private_file(sa.engine.make_url(url).database)
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


_RDB_CLASS = None


def _resilient_storage_class():
    """RDBStorage whose heartbeat survives a database outage.

    Optuna records the heartbeat in a thread that dies on the first database
    error, so after a restart of the server a healthy worker's trial would look
    stale and be failed under it. Here a heartbeat that cannot be written is
    logged and tried again at the next interval.
    """
    global _RDB_CLASS
    if _RDB_CLASS is None:
        import optuna

        class ResilientRDBStorage(optuna.storages.RDBStorage):
            def record_heartbeat(self, trial_id: int) -> None:
                try:
                    super().record_heartbeat(trial_id)
                except Exception as err:
                    if not is_unavailable(err):
                        raise
                    log.warning("heartbeat of trial id %s not recorded (%s); next try in %s s",
                                trial_id, describe_error(err), self.heartbeat_interval)

        _RDB_CLASS = ResilientRDBStorage
    return _RDB_CLASS


_STORAGES: dict[str, object] = {}


def optuna_storage(url: str):
    """Optuna's RDBStorage with heartbeat and retry of stale trials (killed workers); one per URL and process."""
    cached = _STORAGES.get(url)
    if cached is None:
        cached = _STORAGES[url] = _new_optuna_storage(url)
    return cached


def _new_optuna_storage(url: str):
    import optuna

    interval, grace = heartbeat_seconds()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _resilient_storage_class()(
            url,
            engine_kwargs=_engine_kwargs(url),
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )


_INITIALISED: set[str] = set()


@reports_unavailable
def init_database(url: str, attempts: int = 8) -> None:
    """Create our tables and Optuna's once per URL and process; safe when several processes race on an empty database."""
    if url in _INITIALISED:
        return
    engine = get_engine(url)
    for attempt in range(attempts):
        try:
            if url.startswith("sqlite"):
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            metadata.create_all(engine, checkfirst=True)
            optuna_storage(url)
            _INITIALISED.add(url)
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
    _INITIALISED.clear()
    for rdb in _STORAGES.values():
        rdb.engine.dispose()
    _STORAGES.clear()
