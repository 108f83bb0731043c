"""Projects: every project in the database; open one or delete it."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

import fmt
import local_workers
import session
from mat_interp_core import models, projects



def _best_model(handle) -> tuple[int | None, float | None]:
    """(trial, R²) of the best stored model (the refined one's R² once refined): the model that answers first on
    the Results, Simulate and Entropy pages, so the Results page shows the same number."""
    stored = models.values(handle)
    ranked = models.ranked(handle, stored)
    return (ranked[0], stored[ranked[0]]) if ranked else (None, None)


def _table(url: str, items: list) -> pd.DataFrame:
    rows = []
    for p in items:
        handle = projects.ProjectHandle(url, p)
        try:
            prog = projects.progress(handle)
            best_trial, best_r2 = _best_model(handle)
        except session.USER_ERRORS:
            prog, best_trial, best_r2 = {}, None, None
        s = p.space
        rows.append({
            "project": p.name,
            "created": dt.datetime.fromtimestamp(p.created_at).strftime("%Y-%m-%d %H:%M"),
            "points": p.n_rows,
            "X1 / X2 / Y": f"{p.x1_name} / {p.x2_name} / {p.y_name}",
            "finished": prog.get("finished"),
            "target": p.n_trials,
            "failed": prog.get("failed"),
            "running": prog.get("running"),
            "best model R²": best_r2,
            "best model": None if best_trial is None else f"trial {best_trial}",
            "objective": s.objective,
            "epochs": s.epochs,
            "layers": f"{s.layers[0]}–{s.layers[1]}",
            "nodes": f"{s.nodes[0]}–{s.nodes[1]}",
            "lr": f"{s.lr[0]:.1e}–{s.lr[1]:.1e}",
            "solvers": ", ".join(s.solvers),
            "status": "stopped" if p.stop_requested else ("done" if prog.get("done") else "open"),
        })
    return pd.DataFrame(rows)


def _data_facts(project) -> None:
    """Where the project's data came from (each source file's name, size and SHA-256) and what the files said."""
    units = project.units or {}
    sources = units.get("sources") or []
    if sources:
        st.dataframe(pd.DataFrame([{"source file": s["name"], "bytes": s["size"], "rows": s.get("rows"),
                                    "SHA-256": s["sha256"]} for s in sources]), hide_index=True, placeholder="—")
    facts = []
    if units.get("set_points"):
        facts.append(f"{len(units['set_points'])} set points of {project.x2_name} "
                     f"(tolerance {units.get('set_point_tol', 0.1):g})")
    if units.get("protocol"):
        facts.append(f"protocol {units['protocol']}")
    if units.get("sweep"):
        facts.append(f"sweep {units['sweep']}")
    if units.get("mass_mg"):
        facts.append(f"sample mass {units['mass_mg']:g} mg (from the {units.get('mass_from', 'user')})")
    if units.get("stderr"):
        facts.append(f"standard error kept from '{units['stderr']}'")
    if facts:
        st.caption(fmt.md("; ".join(facts) + "."))


def main() -> None:
    st.title("Projects")
    st.caption("Every project in the database, whoever started it and wherever its workers run.")
    session.show_flash()
    url = session.db_url()
    try:
        items = projects.list_projects(url)
        table = _table(url, items)
    except session.DB_ERRORS as err:
        session.db_unavailable(err)
        return
    if not items:
        st.info("There are no projects yet.")
        st.page_link("views/data.py", label="Load data to start one", icon=":material/upload_file:")
        return
    small = st.column_config.NumberColumn(width="small")
    st.dataframe(table, hide_index=True, width="stretch", placeholder="—", column_config={
        "project": st.column_config.TextColumn(pinned=True),
        "best model R²": st.column_config.NumberColumn(
            "best model R²", format="%.6f", help="Training R² of the best stored model (the refined one's once "
            "refined): the model the Results page names first."),
        "points": small, "finished": small, "target": small, "failed": small, "running": small, "epochs": small,
        "X1 / X2 / Y": st.column_config.TextColumn(width="medium"),
    })

    names = [p.name for p in items]
    current = st.session_state.get(session.PROJECT)
    session.choose("w_projects_pick", names, current if current in names else names[-1])
    name = st.selectbox("Project", names, key="w_projects_pick", **session.KEEP)
    shown = fmt.md(name)
    _data_facts(next(p for p in items if p.name == name))
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Open")
        if st.button(f"Open {shown}", key="open", type="primary", icon=":material/folder_open:"):
            st.session_state[session.PROJECT] = name
            st.success(f"{shown} is the current project (Monitor, Results, Simulate and Entropy show it).")
        if st.session_state.get(session.PROJECT) == name:
            st.page_link("views/monitor.py", label="Monitor", icon=":material/monitoring:")
            st.page_link("views/results.py", label="Results", icon=":material/insights:")
    with c2:
        st.subheader("Delete")
        running = local_workers.live_worker_count(name)
        if running:
            st.warning(f"{running} local worker{'s are' if running > 1 else ' is'} still training {shown}; "
                       "deleting stops them after their current epoch.")
        confirm = st.checkbox(f"Yes, delete {shown} with its data, trials, curves and models", key="confirm_delete")
        if st.button(f"Delete {shown}", key="delete", icon=":material/delete:", disabled=not confirm):
            with session.reported() as call:
                projects.delete_project(projects.open_project(url, name))
            if not call.ok:
                return
            if st.session_state.get(session.PROJECT) == name:
                st.session_state.pop(session.PROJECT, None)
            sim = st.session_state.get(session.SIM)
            if sim and sim.get("project") == name:
                st.session_state.pop(session.SIM, None)
            st.session_state.pop("confirm_delete", None)
            session.flash("success", f"Deleted project {shown}.")
            st.rerun()


main()
