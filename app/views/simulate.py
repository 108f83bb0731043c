"""Simulate: the fine measurement the instrument did not take, predicted by the best model(s)."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import streamlit as st

import common
import figures
import fmt
import session
from mat_interp_core import dataset, grids, simulate



def _axis(label: str, key: str, what: str) -> np.ndarray | None:
    text = st.text_input(label, key=key, help="START:STOP:STEP (STOP included when on the grid) or a list v1, v2, …")
    try:
        return dataset.parse_axis(text, what=what)
    except dataset.DataError as err:
        st.error(fmt.md(err))
        return None


def _overlay(training: pd.DataFrame, x2: str, cuts: list[float], grid_x2: np.ndarray) -> pd.DataFrame:
    """The measured curves next to the drawn cuts (within half a grid step of one), each at its own X2."""
    values = np.unique(training[x2].to_numpy(dtype=float))
    step = float(np.min(np.diff(grid_x2))) if grid_x2.size > 1 else np.inf
    cuts_ = np.asarray(cuts, dtype=float)
    near = [v for v in values
            if cuts_.size and np.min(np.abs(cuts_ - v)) <= step / 2 + 1e-12 * max(1.0, abs(v))]
    return training[training[x2].isin(near)]


def _show(sim: dict, project, data) -> None:
    frame: pd.DataFrame = sim["frame"]
    x1, x2, y = project.x1_name, project.x2_name, project.y_name
    units = common.project_units(project)
    x1_t, x2_t, y_t = (common.unit_label(n, units.get(u)) for n, u in ((x1, "x1"), (x2, "x2"), (y, "y")))
    std = f"{y} std" if f"{y} std" in frame else None
    ax1, ax2 = sim["x1"], sim["x2"]
    st.success(f"Simulated {len(frame):,} points ({ax1.size:,} × {ax2.size:,}) with {sim['model']}.")

    st.subheader("Line cuts")
    if st.session_state.get("_cuts_for") != sim["id"]:
        st.session_state["_cuts_for"] = sim["id"]
        measured = grids.nearest(data.x2_values, ax2)
        st.session_state["w_cut_x2"] = ", ".join(grids.nice(v) for v in measured[:12])
        picks = np.linspace(ax1[0], ax1[-1], 7)[1:-1] if ax1.size > 1 else ax1
        st.session_state["w_cut_x1"] = ", ".join(grids.nice(v) for v in grids.nearest(picks, ax1))
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    m1, m2, my = fmt.md(x1), fmt.md(x2), fmt.md(y)
    cut_x2_text = c1.text_input(f"{m2} values for {my} vs {m1} (nearest grid values)", key="w_cut_x2", **session.KEEP)
    cut_x1_text = c2.text_input(f"{m1} values for {my} vs {m2} (nearest grid values)", key="w_cut_x1", **session.KEEP)
    session.init("w_sim_overlay", True)
    overlay = c3.checkbox("Show the training data", key="w_sim_overlay", **session.KEEP)
    left, right = st.columns(2)
    try:
        cut_x2 = grids.nearest(dataset.parse_values(cut_x2_text, what=f"{x2} values for the cuts"), ax2)
        part = frame[frame[x2].isin(cut_x2)]
        fig = figures.fig_curves(part, x1, y, x2, mode="lines", std=std,
                                overlay=_overlay(data.frame, x2, cut_x2, ax2) if overlay else None,
                                group_title=x2_t,
                                title=f"{y} vs {x1}" + (" (band: ± ensemble std)" if std else ""),
                                x_title=x1_t, y_title=y_t)
        left.plotly_chart(fig, key="sim_cut_x1")
    except dataset.DataError as err:
        left.error(fmt.md(err))
    try:
        cut_x1 = grids.nearest(dataset.parse_values(cut_x1_text, what=f"{x1} values for the cuts"), ax1)
        part = frame[frame[x1].isin(cut_x1)]
        fig = figures.fig_curves(part, x2, y, x1, mode="lines+markers" if ax2.size < 30 else "lines", std=std,
                                 group_title=x1_t,
                                title=f"{y} vs {x2}" + (" (band: ± ensemble std)" if std else ""),
                                x_title=x2_t, y_title=y_t)
        right.plotly_chart(fig, key="sim_cut_x2")
    except dataset.DataError as err:
        right.error(fmt.md(err))

    st.subheader("Map")
    if std:
        left, right = st.columns(2)
    else:
        left, right = st.container(), None
    left.plotly_chart(figures.fig_heatmap(frame, x1, x2, y, title=f"Simulated {y}", x_title=x1_t, y_title=x2_t,
                                         z_title=y_t), key="sim_heatmap")
    if right is not None:
        right.plotly_chart(figures.fig_heatmap(frame, x1, x2, std, title="Ensemble spread (std)", x_title=x1_t,
                                              y_title=x2_t, z_title=std, colorscale="Magma"), key="sim_std")
    figures.download_csv(frame, "Download the simulated grid (CSV)", f"{project.name}-simulated.csv", key="dl_sim")
    st.page_link("views/entropy.py", label="Next: magnetic entropy change (on a grid the integral needs)",
                 icon=":material/arrow_forward:")


def main() -> None:
    st.title("Simulate")
    st.caption("Predict Y on any grid of X1 and X2 inside (or, with care, outside) the measured range.")
    session.show_flash()
    project = common.pick_project("w_sim_project")
    if project is None:
        return
    settings = session.settings()
    try:
        data = common.training_data(project)
    except session.DB_ERRORS as err:
        session.db_unavailable(err)
        return
    if st.session_state.get("_sim_axes_for") != project.id:
        st.session_state["_sim_axes_for"] = project.id
        st.session_state["w_sim_x1"], st.session_state["w_sim_x2"] = grids.default_axes(data)
    c1, c2, c3 = st.columns([2, 2, 1])
    with c1:
        ax1 = _axis(f"{fmt.md(project.x1_name)} axis", "w_sim_x1", f"the {project.x1_name} axis")
    with c2:
        ax2 = _axis(f"{fmt.md(project.x2_name)} axis", "w_sim_x2", f"the {project.x2_name} axis")
    session.init("w_sim_k", simulate.default_k(project))
    k = c3.number_input("Ensemble K", min_value=1, max_value=max(1, project.space.keep_models), step=1,
                        key="w_sim_k", **session.KEEP,
                        help="1: the best model; K > 1: mean of the best K with their spread (default: every kept "
                             "model, as on the Results and Entropy pages and in the CLI).")
    lo1, hi1 = float(data.frame[project.x1_name].min()), float(data.frame[project.x1_name].max())
    n1, n2 = fmt.md(project.x1_name), fmt.md(project.x2_name)
    st.caption(f"Measured: {n1} {lo1:g} … {hi1:g}; {n2} "
               f"{', '.join(f'{v:g}' for v in data.x2_values[:12])}{' …' if len(data.x2_values) > 12 else ''}. "
               f"Defaults: {n1} step 1/5 of the median measured spacing, {n2} step 1/5 "
               "of the smallest measured gap.")
    ok = ax1 is not None and ax2 is not None
    if ok:
        st.caption(f"{ax1.size:,} × {ax2.size:,} = {ax1.size * ax2.size:,} points "
                   f"(limit {settings.max_grid_points:,}).")
        outside = grids.outside_measured(data, ax1, ax2)
        if outside:
            st.warning(fmt.md("The grid leaves the measured range: " + "; ".join(outside) + ". The models "
                              "extrapolate there, with no data to check them."), icon=":material/warning:")
    if st.button("Simulate", key="simulate", type="primary", icon=":material/play_arrow:", disabled=not ok):
        with session.reported(), st.spinner("Simulating…"):
            model = common.predictor(project, int(k))
            frame = simulate.simulate(project, ax1, ax2, k=int(k), max_points=settings.max_grid_points,
                                      model=model)
            st.session_state[session.SIM] = {
                "id": uuid.uuid4().hex, "project": project.name, "project_id": project.id, "k": int(k),
                "frame": frame, "x1": ax1, "x2": ax2, "model": simulate.describe_models(project, model),
            }
    sim = st.session_state.get(session.SIM)
    if sim and sim["project_id"] == project.id:
        _show(sim, project, data)
    else:
        st.info("Set the axes and press Simulate.")


main()
