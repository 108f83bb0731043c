"""Session state of a browser session: its keys, settings, flash messages, widget-state helpers and the error
banners (`reported`) that turn library errors into messages."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Sequence

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

import fmt
from mat_interp_core import entropy, storage
from mat_interp_core.config import ConfigError, Settings, check_database_url, get_settings, mask_url
from mat_interp_core.dataset import DataError
from mat_interp_core.network import ModelError
from mat_interp_core.projects import ProjectError
from mat_interp_core.space import SpaceError


# Non-widget keys (plain session values).
DATA = "training_data"  # TrainingData validated on the Data page
UNITS = "units"  # dict: x1, x2, y, magnetisation, mass_mg, m_unit, h_unit, molar_mass_g
SOURCE = "data_source"  # dict: id, name, frame or error
PROJECT = "project"  # name of the current project
SIM = "simulation"  # dict: id, project, project_id, k, frame, x1, x2 (axes), model (label)
FLASH = "flash"  # list of (kind, message) shown once on the next run
STARTED = "workers_started"  # Popen objects this session started (for tests and status)
# Widgets keyed "w_..." keep their value across page switches: they are created with **KEEP.
KEEP = {"persist_state": "session"}
USER_ERRORS = (DataError, ProjectError, SpaceError, entropy.UnitError, ModelError)
REFRESH = "2s"


def _db_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [SQLAlchemyError, OSError, ConnectionError, TimeoutError]
    if hasattr(storage, "DatabaseUnavailable"):
        errors.append(storage.DatabaseUnavailable)
    try:
        import optuna

        errors.append(optuna.exceptions.StorageInternalError)
    except Exception:  # pragma: no cover - optuna always installed with the library
        pass
    return tuple(errors)


DB_ERRORS = _db_errors()


def settings() -> Settings:
    """The settings of this run; a bad environment variable or database URL stops the page with a message."""
    try:
        found = get_settings()
        check_database_url(found.database_url, "MAT_INTERP_DATABASE_URL")
        return found
    except ConfigError as err:
        st.error(f"configuration error: {fmt.md(err)}")
        with st.sidebar:
            st.error(f"configuration error: {fmt.md(err)}")
        st.stop()
        raise  # unreachable (st.stop raises)


def db_url() -> str:
    return settings().database_url


def short_error(err: BaseException) -> str:
    """First line of an error (SQLAlchemy appends background links and the SQL)."""
    reason = getattr(err, "reason", None)  # storage.DatabaseUnavailable: the reason alone
    text = str(reason if isinstance(reason, str) else (getattr(err, "orig", None) or err)).strip()
    text = text or type(err).__name__
    return text.splitlines()[0][:400]


def db_unavailable(err: BaseException) -> None:
    st.error(f"database unavailable: {fmt.md(short_error(err))}; retrying (database {fmt.code(mask_url(db_url()))})", icon="🛑")


@dataclass
class Outcome:
    ok: bool = True


@contextlib.contextmanager
def reported(kind: str = "error", also: tuple[type[BaseException], ...] = ()):
    """Run library calls; a user error (or one of `also`) is shown as st.<kind>, an unavailable database as the
    banner, and `.ok` turns False (the caller then stops drawing).

        with common.reported() as call:
            p = projects.progress(project)
        if not call.ok:
            return
    """
    outcome = Outcome()
    try:
        yield outcome
    except DB_ERRORS as err:
        outcome.ok = False
        db_unavailable(err)
    except USER_ERRORS + also as err:
        outcome.ok = False
        getattr(st, kind)(fmt.md(err))


def flash(kind: str, message: str) -> None:
    """Show ``message`` (Markdown: escape user text in it with :func:`md`) once, on the next run."""
    st.session_state.setdefault(FLASH, []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop(FLASH, []):
        getattr(st, kind)(message)


def init(key: str, value: Any) -> None:
    """Give a widget key its first value (widgets are then created without `value=`)."""
    if key not in st.session_state:
        st.session_state[key] = value


def choose(key: str, options: Sequence[Any], default: Any) -> None:
    """Make sure a selectbox's stored value is one of its current options."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else (options[0] if options else None)
