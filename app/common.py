"""Shared view helpers: sidebar, session keys, cached resources and plotly figures.

Views only: every number shown comes from `mat_interp_core`; this module turns
library results into widgets and figures, and keeps what a browser session
needs between pages (the loaded data, the current project, the last grid).
"""

from __future__ import annotations

import contextlib
import html
import math
import re
import subprocess
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import sample_colorscale
from sqlalchemy.exc import SQLAlchemyError

from mat_interp_core import entropy, projects, readers, simulate, storage
from mat_interp_core.config import ConfigError, Settings, check_database_url, get_settings, mask_url
from mat_interp_core.dataset import DataError, TrainingData
from mat_interp_core.network import ModelError
from mat_interp_core.projects import ProjectError
from mat_interp_core.space import SpaceError

# ------------------------------------------------------------------ session keys
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


# ------------------------------------------------------------------ page entry


# ------------------------------------------------------------------ settings and sidebar


# What starts Markdown that Streamlit renders in one line: links and images ([ ]), HTML and autolinks (<),
# emphasis (* ~; '_' only between words, where it is text), code, math ($), colour directives (:red[...]),
# and at the start only, headings, quotes and lists -- escaped with a backslash.
_MARKDOWN = re.compile(r"[\\`*\[\]<$~]|^[#>+-]|(?<=^\d)[.)]|(?<=^\d\d)[.)]|(?<=^\d\d\d)[.)]")
# Bare URLs and e-mail addresses, which Streamlit's frontend links whatever the escapes: a zero-width space
# after '://' and 'www', and before '@', keeps them text.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)


def md(text: Any) -> str:
    """``text`` on one line with its Markdown escaped, for user text (column, project, unit names, error
    messages quoting them) inside st.markdown/caption/info/... and widget labels: a column named
    ``[x](http://…)`` shows as typed for every viewer of a shared database, never as a link or image."""
    escaped = _MARKDOWN.sub(lambda m: "\\" + m.group(0), " ".join(str(text).split()))
    return _AUTOLINK.sub("\u200b", escaped)


def code(text: Any) -> str:
    """``text`` as a Markdown code span (shown literally), fenced by more backticks than it holds."""
    text = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def settings() -> Settings:
    """The settings of this run; a bad environment variable or database URL stops the page with a message."""
    try:
        found = get_settings()
        check_database_url(found.database_url, "MAT_INTERP_DATABASE_URL")
        return found
    except ConfigError as err:
        st.error(f"configuration error: {md(err)}")
        with st.sidebar:
            st.error(f"configuration error: {md(err)}")
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
    st.error(f"database unavailable: {md(short_error(err))}; retrying (database {code(mask_url(db_url()))})", icon="🛑")


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
        getattr(st, kind)(md(err))


def sidebar() -> None:
    """Current project, the data in use and the database (password masked)."""
    with st.sidebar:
        project = st.session_state.get(PROJECT)
        st.markdown(f"**Project:** {md(project) if project else '— none —'}")
        data: TrainingData | None = st.session_state.get(DATA)
        source = st.session_state.get(SOURCE) or {}
        if data is not None:
            st.caption(f"Data: {md(source.get('name', '?'))} — {len(data.frame):,} points, "
                       f"{len(data.x2_values)} × {md(data.x2_name)}")
        st.caption(f"Database: {code(mask_url(db_url()))}")
        running = live_worker_count()
        if running:
            st.caption(f"Local workers running: {running}")


def flash(kind: str, message: str) -> None:
    """Show ``message`` (Markdown: escape user text in it with :func:`md`) once, on the next run."""
    st.session_state.setdefault(FLASH, []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop(FLASH, []):
        getattr(st, kind)(message)


# ------------------------------------------------------------------ widget state


def init(key: str, value: Any) -> None:
    """Give a widget key its first value (widgets are then created without `value=`)."""
    if key not in st.session_state:
        st.session_state[key] = value


def choose(key: str, options: Sequence[Any], default: Any) -> None:
    """Make sure a selectbox's stored value is one of its current options."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else (options[0] if options else None)


# ------------------------------------------------------------------ projects and workers


def project_names() -> list[str] | None:
    """Names of all projects, or None (and a banner) when the database is unavailable."""
    try:
        return [p.name for p in projects.list_projects(db_url())]
    except DB_ERRORS as err:
        db_unavailable(err)
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
    current = st.session_state.get(PROJECT)
    choose(key, names, current if current in names else names[-1])
    name = st.selectbox(label, names, key=key, **KEEP)
    st.session_state[PROJECT] = name
    try:
        return projects.open_project(db_url(), name)
    except ProjectError as err:
        st.warning(md(err))
    except DB_ERRORS as err:
        db_unavailable(err)
    return None


@st.cache_resource
def _worker_registry() -> dict[str, list[subprocess.Popen]]:
    """Local worker processes started by this server, per project (shared by all sessions)."""
    return {}


def register_workers(name: str, procs: list[subprocess.Popen]) -> None:
    _worker_registry().setdefault(name, []).extend(procs)
    st.session_state.setdefault(STARTED, []).extend(procs)


def live_worker_count(name: str | None = None) -> int:
    """Running local workers (of one project or all); exited ones are reaped and forgotten."""
    registry = _worker_registry()
    total = 0
    for project, procs in list(registry.items()):
        alive = [p for p in procs if p.poll() is None]
        registry[project] = alive
        if name is None or project == name:
            total += len(alive)
    return total


# ------------------------------------------------------------------ cached library results


@st.cache_resource(max_entries=16, show_spinner="Loading the trained model…")
def _predictor(_project: projects.ProjectHandle, url: str, project_id: int, k: int,
               trials: tuple[tuple[int, float], ...]):
    return simulate.predictor(_project, k)  # cached by the other arguments (a leading _ is not hashed)


def predictor(project: projects.ProjectHandle, k: int):
    """Best model (k = 1) or ensemble of the best k, cached by the trials it is made of and their models' R²
    (a refined model replaces a trial's model and its R²)."""
    values = simulate.model_values(project)
    trials = tuple((n, values[n]) for n in simulate.ranked_trials(project, values)[: max(1, int(k))])
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


# ------------------------------------------------------------------ units


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


# ------------------------------------------------------------------ formatting


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def fmt_value(value: float | None, digits: int = 6) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def nice(value: float) -> str:
    """A short text for a number typed into an axis field."""
    return f"{value:.10g}"


# ------------------------------------------------------------------ plots


def colours(n: int, scale: str = "Viridis") -> list[str]:
    if n <= 1:
        return sample_colorscale(scale, [0.2])
    return sample_colorscale(scale, [0.05 + 0.85 * i / (n - 1) for i in range(n)])


def plain(text: Any) -> str:
    """``text`` for a plotly title, legend or hover: plotly renders a subset of HTML there (links, <b>, <br>),
    so user text (column names) has it escaped and shows as typed."""
    return html.escape(str(text), quote=False)


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, height: int = 480) -> go.Figure:
    fig.update_layout(
        title=plain(title),
        xaxis_title=plain(x_title),
        yaxis_title=plain(y_title),
        height=height,
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(itemsizing="constant"),
        template="plotly_white",
    )
    return fig


def fig_curves(
    frame: pd.DataFrame,
    x: str,
    y: str,
    group: str,
    *,
    title: str,
    x_title: str | None = None,
    y_title: str | None = None,
    mode: str = "markers",
    std: str | None = None,
    overlay: pd.DataFrame | None = None,
    overlay_name: str = "measured",
    max_groups: int = 60,
) -> go.Figure:
    """One trace per value of `group` (coloured along a sequential scale), optional ±std band
    and an overlay of points (same colours) from another frame with the same columns."""
    fig = go.Figure()
    values = np.unique(frame[group].to_numpy())
    if values.size > max_groups:  # keep the figure readable: an even subset of the curves
        values = values[np.unique(np.linspace(0, values.size - 1, max_groups).round().astype(int))]
    palette = colours(values.size)
    for value, colour in zip(values, palette):
        part = frame[frame[group] == value].sort_values(x)
        label = plain(f"{group} = {value:g}")
        if std is not None and std in part:
            upper = part[y] + part[std]
            lower = part[y] - part[std]
            fig.add_trace(go.Scatter(x=part[x], y=upper, mode="lines", line=dict(width=0), showlegend=False,
                                     legendgroup=label, hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=part[x], y=lower, mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor=_rgba(colour, 0.25), showlegend=False, legendgroup=label,
                                     hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=part[x], y=part[y], mode=mode, name=label, legendgroup=label,
            line=dict(color=colour, width=2), marker=dict(color=colour, size=5),
        ))
        if overlay is not None:
            near = overlay[np.isclose(overlay[group].to_numpy(dtype=float), float(value), rtol=1e-9, atol=0)]
            if len(near):
                fig.add_trace(go.Scatter(
                    x=near[x], y=near[y], mode="markers", name=f"{label} ({overlay_name})", legendgroup=label,
                    marker=dict(color=colour, size=6, symbol="circle-open", line=dict(width=1.5)),
                    showlegend=False,
                ))
    return _layout(fig, title, x_title or x, y_title or y)


def _rgba(colour: str, alpha: float) -> str:
    """'rgb(r, g, b)' or '#rrggbb' -> 'rgba(r, g, b, alpha)'."""
    colour = colour.strip()
    if colour.startswith("#") and len(colour) == 7:
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", colour)[:3])
    return f"rgba({r}, {g}, {b}, {alpha})"


def fig_heatmap(
    frame: pd.DataFrame,
    x: str,
    y: str,
    z: str,
    *,
    title: str,
    x_title: str | None = None,
    y_title: str | None = None,
    z_title: str | None = None,
    rows_as_categories: bool = False,
    max_cells: int = 80_000,
    colorscale: str = "Viridis",
) -> go.Figure:
    """Heatmap of z over (x, y) from a long frame.

    A full grid is sent as a matrix, thinned evenly to about ``max_cells`` cells
    for display only. Scattered data (every X2 curve with its own X1 values) is
    averaged into X1 bins for display, plotly filling empty bins
    (``connectgaps``); ``rows_as_categories`` gives every curve a row of equal height.
    """
    data = frame[[x, y, z]]
    xs = np.unique(data[x].to_numpy())
    ys = np.unique(data[y].to_numpy())
    hover = (f"{plain(x_title or x)}: %{{x}}<br>{plain(y_title or y)}: %{{y}}<br>{plain(z_title or z)}: "
             "%{z}<extra></extra>")
    colorbar = dict(title=dict(text=plain(z_title or z), side="right"))
    if len(data) == xs.size * ys.size and not rows_as_categories:
        matrix = data.pivot_table(index=y, columns=x, values=z, aggfunc="first")
        thin = max(1, math.ceil(math.sqrt(matrix.size / max_cells)))
        matrix = matrix.iloc[::thin, ::thin]
        trace = go.Heatmap(x=matrix.columns.to_numpy(), y=matrix.index.to_numpy(), z=matrix.to_numpy(),
                           colorscale=colorscale, colorbar=colorbar, hovertemplate=hover)
    else:
        # Scattered X1 (every curve sampled at its own X1 values): put X1 into as many
        # bins as a curve has points, so each row has about one value per column.
        per_row = int(data.groupby(y)[x].size().median())
        n_bins = int(np.clip(per_row, 10, max(10, max_cells // max(1, ys.size))))
        edges = np.linspace(xs[0], xs[-1], n_bins + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        column = np.clip(np.searchsorted(edges, data[x].to_numpy(), side="right") - 1, 0, n_bins - 1)
        binned = data.assign(**{x: centres[column]}).pivot_table(index=y, columns=x, values=z, aggfunc="mean")
        binned = binned.reindex(columns=centres)
        rows = [f"{v:g}" for v in binned.index] if rows_as_categories else binned.index.to_numpy()
        trace = go.Heatmap(x=binned.columns.to_numpy(), y=rows, z=binned.to_numpy(), colorscale=colorscale,
                           connectgaps=True, colorbar=colorbar, hovertemplate=hover)
    fig = go.Figure(trace)
    if rows_as_categories:
        fig.update_yaxes(type="category", categoryorder="array", categoryarray=[f"{v:g}" for v in ys])
    return _layout(fig, title, x_title or x, y_title or y, height=460)


def fig_learning_curves(curves: pd.DataFrame, *, metric: str, best_trial: int | None, y_range=None) -> go.Figure:
    """One line per trial; pruned dashed grey, failed dotted red, the best trial thick."""
    fig = go.Figure()
    trials = sorted(curves["trial"].unique()) if len(curves) else []
    palette = colours(max(1, len(trials)), "Turbo")
    for colour, trial in zip(palette, trials):
        part = curves[curves["trial"] == trial]
        state = str(part["state"].iloc[0])
        line = dict(color=colour, width=1.5)
        opacity = 0.9
        if state == "PRUNED":
            line = dict(color="rgb(150, 150, 150)", width=1, dash="dash")
            opacity = 0.6
        elif state == "FAIL":
            line = dict(color="rgb(214, 39, 40)", width=1, dash="dot")
            opacity = 0.6
        if trial == best_trial:
            line = dict(color="rgb(0, 0, 0)", width=3)
            opacity = 1.0
        fig.add_trace(go.Scatter(
            x=part["epoch"], y=part[metric], mode="lines", line=line, opacity=opacity,
            name=f"#{trial} {state.lower()}" + (" (best)" if trial == best_trial else ""),
        ))
    fig = _layout(fig, f"{len(trials)} trial{'s' if len(trials) != 1 else ''}", "epoch",
                  "training R²" if metric == "r2" else "training loss (standardised MSE)")
    if metric == "loss":
        fig.update_yaxes(type="log")
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


def fig_lines(
    frame: pd.DataFrame, x: str, y: str, *, group: str, style: str | None = None, title: str,
    x_title: str, y_title: str, group_fmt: Callable[[Any], str] = str, std: str | None = None,
) -> go.Figure:
    """Lines coloured by `group`; `style` (e.g. the source of a curve) varies the dash; a ±`std` band
    where that column has values."""
    fig = go.Figure()
    groups = list(pd.unique(frame[group]))
    palette = colours(len(groups), "Plasma")
    styles = list(pd.unique(frame[style])) if style else [None]
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for g, colour in zip(groups, palette):
        for i, s in enumerate(styles):
            part = frame[frame[group] == g]
            if style:
                part = part[part[style] == s]
            if part.empty:
                continue
            part = part.sort_values(x)
            name = plain(group_fmt(g) + (f" — {s}" if style else ""))
            if std is not None and std in part and part[std].notna().any():
                for edge, fill in ((part[y] + part[std], None), (part[y] - part[std], "tonexty")):
                    fig.add_trace(go.Scatter(x=part[x], y=edge, mode="lines", line=dict(width=0), fill=fill,
                                             fillcolor=_rgba(colour, 0.25), showlegend=False, legendgroup=name,
                                             hoverinfo="skip"))
            fig.add_trace(go.Scatter(
                x=part[x], y=part[y], mode="lines", name=name, legendgroup=name,
                line=dict(color=colour, width=2.5 if i == 0 else 1.6, dash=dashes[i % len(dashes)]),
            ))
    return _layout(fig, title, x_title, y_title)


def download_html(fig: go.Figure, label: str, file_name: str, key: str) -> None:
    st.download_button(label, fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8"),  # opens offline
                       file_name=file_name, mime="text/html", key=key, icon=":material/download:")


def download_csv(frame: pd.DataFrame, label: str, file_name: str, key: str) -> None:
    st.download_button(label, frame.to_csv(index=False).encode("utf-8"), file_name=file_name,
                       mime="text/csv", key=key, icon=":material/download:")


# ------------------------------------------------------------------ grids


def x1_spacing(data: TrainingData) -> float:
    """Median spacing of the measured X1 values along each X2 curve."""
    frame = data.frame
    steps = frame.groupby(data.x2_name, sort=False)[data.x1_name].apply(
        lambda s: np.diff(np.sort(s.to_numpy()))
    )
    diffs = np.concatenate([d for d in steps if len(d)]) if len(steps) else np.array([])
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        span = float(np.ptp(frame[data.x1_name]))
        return span / 100 if span > 0 else 1.0
    return float(np.median(diffs))


def even_axis(lo: float, hi: float, target_step: float) -> tuple[np.ndarray, float]:
    """lo..hi (both included) with the step nearest to `target_step` that divides the span."""
    if not hi > lo or not target_step > 0:
        return np.array([lo]), 0.0
    n = max(1, math.ceil((hi - lo) / target_step - 1e-9))
    step = (hi - lo) / n
    axis = lo + np.arange(n + 1) * step
    axis[-1] = hi
    return axis, step


def axis_text(lo: float, hi: float, step: float) -> str:
    return f"{nice(lo)}:{nice(hi)}:{nice(step)}" if step > 0 else nice(lo)


def _nice_divisor(span: float, target: float) -> float | None:
    """The largest 1-2-2.5-5 x 10^k step <= target (and >= target/4) that divides `span` exactly."""
    if not span > 0 or not target > 0:
        return None
    top = math.floor(math.log10(target))
    for e in range(top, top - 3, -1):
        for m in (5.0, 2.5, 2.0, 1.0):
            step = m * 10.0**e
            if step > target * (1 + 1e-12) or step < target / 4:
                continue
            n = span / step
            if abs(n - round(n)) <= 1e-9 * max(1.0, n):
                return step
    return None


def default_axes(data: TrainingData) -> tuple[str, str]:
    """Simulate defaults: X1 step 1/5 of the median measured spacing, X2 step 1/5 of the smallest gap.

    X1 is rounded to two significant digits of its step; X2 keeps its measured ends
    exactly (the top field matters for ΔH), with a round step when one divides the span.
    """
    x1 = data.frame[data.x1_name]
    lo1, hi1 = float(x1.min()), float(x1.max())
    step1 = float(f"{x1_spacing(data) / 5:.2g}")
    digits = max(0, 1 - math.floor(math.log10(step1))) if step1 > 0 else 0
    text1 = axis_text(round(lo1, digits), round(hi1, digits), step1) if step1 > 0 else nice(lo1)
    x2v = data.x2_values
    lo2, hi2 = float(x2v[0]), float(x2v[-1])
    gap = float(np.min(np.diff(x2v))) if x2v.size > 1 else 0.0
    step2 = _nice_divisor(hi2 - lo2, gap / 5)
    if step2 is None:
        _, step2 = even_axis(lo2, hi2, gap / 5)
    return text1, axis_text(lo2, hi2, step2)


def nearest(values: Iterable[float], axis: np.ndarray) -> list[float]:
    """Grid values nearest to the requested ones (no repeats, in order)."""
    out: list[float] = []
    axis = np.asarray(axis, dtype=float)
    for v in values:
        g = float(axis[int(np.argmin(np.abs(axis - v)))])
        if g not in out:
            out.append(g)
    return out
