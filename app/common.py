"""Shared view helpers: the sidebar, project pickers, cached library results and units.

Views only: every number shown comes from `mat_interp_core`; session keys and error banners are in
session.py, figures in figures.py, text formatting in fmt.py and the local workers in local_workers.py.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

import fmt
import local_workers
import session

from mat_interp_core import entropy, models, projects, readers, simulate
from mat_interp_core.config import mask_url
from mat_interp_core.dataset import TrainingData
from mat_interp_core.projects import ProjectError


def sidebar() -> None:
    """Current project, the data in use and the database (password masked)."""
    with st.sidebar:
        project = st.session_state.get(session.PROJECT)
        st.markdown(f"**Project:** {fmt.md(project) if project else '— none —'}")
        data: TrainingData | None = st.session_state.get(session.DATA)
        source = st.session_state.get(session.SOURCE) or {}
        if data is not None:
            st.caption(f"Data: {fmt.md(source.get('name', '?'))} — {len(data.frame):,} points, "
                       f"{len(data.x2_values)} × {fmt.md(data.x2_name)}")
        st.caption(f"Database: {fmt.code(mask_url(session.db_url()))}")
        running = local_workers.live_worker_count()
        if running:
            st.caption(f"Local workers running: {running}")


def project_names() -> list[str] | None:
    """Names of all projects, or None (and a banner) when the database is unavailable."""
    try:
        return [p.name for p in projects.list_projects(session.db_url())]
    except session.DB_ERRORS as err:
        session.db_unavailable(err)
        return None


def pick_project(key: str, *, label: str = "Project") -> projects.ProjectHandle | None:
    """A selectbox of every project (defaulting to the current one); sets the current project and returns its
    handle, resolved once for this run of the page."""
    names = project_names()
    if names is None:
        return None
    if not names:
        st.info("There are no projects in this database yet: load data, then start one on the Train page.")
        st.page_link("views/train.py", label="Go to Train", icon=":material/model_training:")
        return None
    current = st.session_state.get(session.PROJECT)
    session.choose(key, names, current if current in names else names[-1])
    name = st.selectbox(label, names, key=key, **session.KEEP)
    st.session_state[session.PROJECT] = name
    try:
        return projects.open_project(session.db_url(), name)
    except ProjectError as err:
        st.warning(fmt.md(err))
    except session.DB_ERRORS as err:
        session.db_unavailable(err)
    return None


@st.cache_resource(max_entries=16, show_spinner="Loading the trained model…")
def _predictor(_project: projects.ProjectHandle, url: str, project_id: int, k: int,
               trials: tuple[tuple[int, float], ...]):
    return simulate.predictor(_project, k)  # cached by the other arguments (a leading _ is not hashed)


def predictor(project: projects.ProjectHandle, k: int):
    """Best model (k = 1) or ensemble of the best k, cached by the trials it is made of and their models' R²
    (a refined model replaces a trial's model and its R²)."""
    values = models.values(project)
    trials = tuple((n, values[n]) for n in models.ranked(project, values)[: max(1, int(k))])
    if not trials:
        raise ProjectError(f"project {project.name!r} has no finished trial with a model yet; train it first")
    return _predictor(project, project.url, project.id, int(k), trials)


@st.cache_resource(max_entries=16, show_spinner=False)
def _training_data(_project: projects.ProjectHandle, url: str, project_id: int) -> TrainingData:
    return _project.data


def training_data(project: projects.ProjectHandle) -> TrainingData:
    """The project's stored training data (immutable, so cached by project id)."""
    return _training_data(project, project.url, project.id)


def model_label(model) -> str:
    members = getattr(model, "members", None)
    if members:
        return "ensemble of trials " + ", ".join(f"#{m.trial_number}" for m in members)
    return f"trial #{model.trial_number} (R² {model.value:.6f})"


def unit_from_name(column: str) -> str:
    """'T (K)' -> 'K', 'moment [emu]' -> 'emu', 'M (A m2/kg)' -> 'A m2/kg', else '' (readers.unit_in_name)."""
    return readers.unit_in_name(column)


def unit_label(name: str, unit: str | None) -> str:
    """Axis label: the column name, plus the unit when the name does not already carry it."""
    if unit and unit_from_name(name) != unit:
        return f"{name} [{unit}]"
    return name


def looks_like_magnetisation(y_name: str, y_unit: str) -> bool:
    text = f"{y_name} {y_unit}".lower()
    return y_unit in entropy.M_UNITS or any(w in text for w in ("moment", "magneti", "emu"))


def project_units(project: projects.Project) -> dict[str, Any]:
    """Units stored with the project, completed from the column names."""
    units = dict(project.units or {})
    units.setdefault("x1", unit_from_name(project.x1_name))
    units.setdefault("x2", unit_from_name(project.x2_name))
    units.setdefault("y", unit_from_name(project.y_name))
    return units
