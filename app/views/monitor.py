"""Monitor: live progress of a project, read from the database only (works for remote workers too)."""

from __future__ import annotations

import streamlit as st

import common
import figures
import fmt
import local_workers
import session
from mat_interp_core import projects, refine, uncertainty, validation, workers


CURVE_POINTS = 200  # epochs drawn per learning curve at most (first, last and best always)


def _progress_section(p: dict, after: list | None = None) -> None:
    """The search's progress; `after`: the steps after it (see _after_search_steps), "Finished" once all are done."""
    target = max(1, int(p["target"]))
    finished = int(p["finished"])
    pending = [step for step in after or [] if step[1] < step[2]]
    if p["done"] and not pending:
        st.success(f"Finished: {finished} of {p['target']} trials ({p['complete']} complete, {p['pruned']} pruned, "
                   f"{p['failed']} failed) and every step after the search.", icon=":material/check_circle:")
    elif p["done"]:
        st.info(f"Search finished ({finished} of {p['target']} trials); the steps after it are under way (below).")
    elif p["stop_requested"]:
        st.warning(f"Stopped on request: {finished} of {p['target']} trials finished. Continue it on the Train page.")
    st.progress(min(1.0, finished / target),
                text=f"{finished} / {p['target']} trials finished — {p['pruned']} pruned, {p['failed']} failed, "
                     f"{p['running']} running, {p['waiting']} waiting")
    c = st.columns(5)
    c[0].metric("Best R² of the search", fmt.fmt_value(p["best_value"]),
                help="The search's best trial; the Projects and Results pages show the best model's R² (refined "
                     "once the steps after the search have run).")
    c[1].metric("Best trial", "—" if p["best_trial"] is None else f"#{p['best_trial']}")
    c[2].metric("Elapsed", fmt.fmt_duration(p["elapsed_s"]))
    eta = p["eta_s"] if not p["done"] else next((step[3] for step in pending if step[3] is not None), None)
    c[3].metric("ETA", "done" if p["done"] and not pending else fmt.fmt_duration(eta))
    c[4].metric("Local workers", local_workers.live_worker_count(st.session_state.get(session.PROJECT)),
                help="Worker processes this app started; workers elsewhere show up as running trials.")
    if p["best_params"]:
        params = ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}"
                           for k, v in p["best_params"].items())
        st.caption(f"Best hyper-parameters: {params}")


def _after_search_steps(project) -> list[tuple]:
    """(label, done, total, ETA s or None, what, processes running it now) of each step the workers run once the
    search is done."""
    steps = []
    r = refine.refine_progress(project)
    if r["total"]:
        steps.append(("Refinement", r["fraction"] * r["total"], r["total"], r["eta_s"],
                      f"retrain the best configurations for the full epoch budget, {r['running']} at a time now "
                      "(their models become the ensemble)", r["running"]))
    if project.space.objective == "holdout":  # the cached training data: this fragment reruns every 2 s
        scored, total = validation.validation_status(project, data=common.training_data(project))
        steps.append(("Held-out validation", scored, total, None, "retrains each of the best trials with interior "
                      "curves held out", 0))
    c = uncertainty.calibration_progress(project)
    if c["total"]:  # a band needs an interior field to hold out
        steps.append(("|ΔS_M| band's held-out folds", c["done"], c["total"], c["eta_s"], "train the best "
                      f"configuration with each interior field left out, in {c['total']} groups", c["running"]))
    return steps


def _after_search_section(project, steps: list[tuple]) -> None:
    """The steps the workers run once the search is done: progress with ETA, or a button that starts a local
    worker for them when none runs them (the web server itself never trains)."""
    name = project.name
    pending = [s for s in steps if s[1] < s[2]]
    for label, done, total, *_ in steps:
        if done >= total:
            st.caption(f"{label}: done ({total:g} of {total:g}).")
    if not pending:
        return
    if local_workers.live_worker_count(name) or any(s[5] for s in steps):  # claimed by a worker anywhere
        for label, done, total, eta, what, _ in pending:
            left = "" if eta is None else f", about {fmt.fmt_duration(eta)} left"
            st.progress(min(1.0, done / max(1, total)),
                        text=f"{label}: {round(done, 1):g} of {total:g}{left} (workers {what})…")
        return
    st.info(" ".join(f"{label}: {round(done, 1):g} of {total:g} done." for label, done, total, *_ in pending)
            + " No worker is running it: start one on this machine.")
    if st.button("Run the steps after the search now", key="finish", icon=":material/done_all:"):
        local_workers.register_workers(name, workers.launch_local(project, 1, finish=True))
        session.flash("success", f"A local worker started the steps after the search of {fmt.md(name)}; "
                                "their progress shows here.")
        st.rerun()


def _curves_section(curves, best_trial) -> None:
    st.subheader("Learning curves")
    session.init("w_curve_metric", "r2")
    session.init("w_r2_lo", 0.99)
    session.init("w_r2_hi", 1.0)
    session.init("w_auto_range", True)  # from the data: running trials show from their first epochs
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    metric = c1.radio("Show", ["r2", "loss"], key="w_curve_metric", **session.KEEP, horizontal=True,
                      format_func={"r2": "R² vs epoch", "loss": "loss vs epoch (log)"}.get)
    auto = c4.checkbox("Automatic range", key="w_auto_range", **session.KEEP,
                       help="From every trial's latest R² up to the best one: a trial in its first epochs shows. "
                            "Off: the range typed on the left.")
    lo = c2.number_input("R² axis from", min_value=-1e6, max_value=1.0, step=0.001, format="%.4f",
                         key="w_r2_lo", **session.KEEP,
                         disabled=metric != "r2" or auto)
    hi = c3.number_input("R² axis to", min_value=-1e6, max_value=1.5, step=0.001, format="%.4f",
                         key="w_r2_hi", **session.KEEP,
                         disabled=metric != "r2" or auto)
    y_range = None
    if metric == "r2" and not auto:
        if lo >= hi:
            st.error("the R² axis needs 'from' below 'to'")
        else:
            y_range = (lo, hi)
    elif metric == "r2":
        y_range = figures.r2_range(curves)
    if curves.empty:
        st.info("No epochs recorded yet: the first curves appear a second or two after a trial starts.")
        return
    st.plotly_chart(figures.fig_learning_curves(curves, metric=metric, best_trial=best_trial, y_range=y_range),
                    key="learning_curves")
    st.caption("Black: best trial; dashed grey: pruned; dotted red: failed.")


@st.fragment(run_every=session.REFRESH)
def live() -> None:
    """Reruns on its own every few seconds; reads only the database."""
    names = common.project_names()  # shows the banner itself when the database is down
    if names is None:
        return
    if not names:
        st.info("There are no projects in this database yet.")
        st.page_link("views/train.py", label="Start one on the Train page", icon=":material/model_training:")
        return
    current = st.session_state.get(session.PROJECT)
    session.choose("w_monitor_project", names, current if current in names else names[-1])
    name = st.selectbox("Project", names, key="w_monitor_project", **session.KEEP,
                        help="Every project in the database, including ones whose workers run elsewhere.")
    st.session_state[session.PROJECT] = name
    with session.reported("warning") as call:
        project = projects.open_project(session.db_url(), name)  # one handle for the whole refresh
        p = projects.progress(project)
        trials = projects.trials_frame(project)
        curves = projects.curves_frame(project, max_points=CURVE_POINTS)
        after = _after_search_steps(project) if p["done"] and p["best_trial"] is not None else []
        _progress_section(p, after)
        if after:
            _after_search_section(project, after)
    if not call.ok:
        return
    _curves_section(curves, p["best_trial"])
    st.subheader("Trials")
    st.dataframe(trials, hide_index=True, placeholder="—",
                 column_config={"R2": st.column_config.NumberColumn("R²", format="%.6f"),
                                "lr": st.column_config.NumberColumn("lr", format="%.2e"),
                                "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
                                "holdout_rmse": st.column_config.NumberColumn("held-out RMSE", format="%.4g"),
                                "note": st.column_config.TextColumn("note", width="large")})


st.title("Monitor")
st.caption(f"Refreshes every {session.REFRESH} from the database alone: close the tab and come back any time.")
session.show_flash()
live()
