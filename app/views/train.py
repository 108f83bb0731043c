"""Train: create a project from the loaded data, search its networks with local workers; stop or continue."""

from __future__ import annotations

import re

import streamlit as st

import common
import fmt
import local_workers
import session
from mat_interp_core import dataset, projects, space as space_mod, workers
from mat_interp_core.network import SOLVERS
from mat_interp_core.space import SearchSpace


_DEFAULTS = SearchSpace()
_SOLVER_LABELS = {"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD", "nesterov": "SGD + Nesterov momentum"}
_OBJECTIVES = {
    "train_r2": "training R² (the paper's choice)",
    "holdout": "held-out error (one interior X2 curve left out)",
}


def _default_name(existing: list[str]) -> str:
    src = st.session_state.get(session.SOURCE) or {}
    stem = str(src.get("name") or "project").rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:50] or "project"
    if not stem[0].isalnum():
        stem = "p" + stem
    name, i = stem, 1
    while name in existing:
        i += 1
        name = f"{stem}-{i}"
    return name


def _space_widgets(n_points: int) -> dict:
    """The search space and schedule; returns keyword arguments for SearchSpace."""
    settings = session.settings()
    st.subheader("Search")
    session.init("w_trials", 30)
    session.init("w_workers", max(1, settings.default_workers))
    session.init("w_epochs", _DEFAULTS.epochs)
    session.init("w_solvers", list(_DEFAULTS.solvers))
    session.init("w_objective", _DEFAULTS.objective)
    c1, c2, c3 = st.columns(3)
    c1.number_input("Trials (networks to train)", min_value=1, max_value=10_000, step=1, key="w_trials", **session.KEEP,
                    help="Finished trials (complete + pruned) the search aims for.")
    c2.number_input("Parallel workers", min_value=1, max_value=256, step=1, key="w_workers", **session.KEEP,
                    help="Worker processes on this machine (default: one per core, at most one per GiB of memory "
                         f"beyond the first = {settings.default_workers}). "
                         "Workers on other machines join with `mat-interp worker` against the same database.",
                    disabled=not settings.local_workers)
    c3.number_input("Epochs per trial (max)", min_value=1, max_value=100_000, step=10, key="w_epochs", **session.KEEP,
                    help="Training stops earlier when the loss has not improved for 'patience' epochs.")

    session.init("w_layers", tuple(_DEFAULTS.layers))
    session.init("w_nodes", tuple(_DEFAULTS.nodes))
    s1, s2 = st.columns(2)
    s1.slider("Hidden layers (range searched)", min_value=1, max_value=20, step=1, key="w_layers", **session.KEEP)
    s2.slider("Nodes per layer (range searched)", min_value=4, max_value=512, step=1, key="w_nodes", **session.KEEP)

    session.init("w_lr_lo", float(_DEFAULTS.lr[0]))
    session.init("w_lr_hi", float(_DEFAULTS.lr[1]))
    l1, l2, l3 = st.columns([1, 1, 2])
    l1.number_input("Learning rate from", min_value=1e-7, max_value=1.0, step=1e-4, format="%.1e",
                    key="w_lr_lo", **session.KEEP)
    l2.number_input("Learning rate to", min_value=1e-7, max_value=1.0, step=1e-4, format="%.1e",
                    key="w_lr_hi", **session.KEEP,
                    help="Log-uniform; the rate decays piecewise to 1/5 during training.")
    l3.multiselect("Solvers", list(SOLVERS), key="w_solvers", **session.KEEP,
                   format_func=lambda s: _SOLVER_LABELS.get(s, s))
    st.radio("Choose the best model by", list(_OBJECTIVES), key="w_objective", **session.KEEP,
             format_func=_OBJECTIVES.get,
             horizontal=True)

    with st.expander("Early stopping, pruning and other settings"):
        session.init("w_patience", _DEFAULTS.patience)
        session.init("w_min_resource", _DEFAULTS.min_resource)
        session.init("w_reduction", _DEFAULTS.reduction_factor)
        session.init("w_keep", _DEFAULTS.keep_models)
        session.init("w_seed", None)
        a1, a2, a3 = st.columns(3)
        a1.number_input("Patience (epochs without improvement)", min_value=1, step=1, key="w_patience", **session.KEEP)
        a2.number_input("Pruning: first check after (epochs)", min_value=1, step=1, key="w_min_resource", **session.KEEP,
                        help="Successive halving: a trial is compared with the others after this many epochs, "
                             "then after ×reduction factor, …")
        a3.number_input("Pruning: reduction factor", min_value=2, step=1, key="w_reduction", **session.KEEP)
        b1, b2, _ = st.columns(3)
        b1.number_input("Models kept (best N: refined after the search, then the ensemble)", min_value=1, max_value=100, step=1,
                        key="w_keep", **session.KEEP)
        b2.number_input("Random seed (empty: none)", min_value=0, step=1, key="w_seed", **session.KEEP)
        st.caption(f"Batch sizes are chosen from the number of points ({n_points:,}): "
                   f"{', '.join(map(str, space_mod.batch_choices(n_points)))}.")
    ss = st.session_state
    return dict(
        layers=tuple(int(v) for v in ss["w_layers"]),
        nodes=tuple(int(v) for v in ss["w_nodes"]),
        lr=(float(ss["w_lr_lo"]), float(ss["w_lr_hi"])),
        solvers=tuple(ss["w_solvers"]),
        epochs=int(ss["w_epochs"]),
        patience=int(ss["w_patience"]),
        min_resource=int(ss["w_min_resource"]),
        reduction_factor=int(ss["w_reduction"]),
        objective=ss["w_objective"],
        keep_models=int(ss["w_keep"]),
        seed=None if ss["w_seed"] is None else int(ss["w_seed"]),
    )


def _start(name: str, data: dataset.TrainingData, space_kwargs: dict) -> None:
    settings = session.settings()
    url = settings.database_url
    units = st.session_state.get(session.UNITS) or {}
    shown = fmt.md(name)
    with session.reported() as call, st.spinner(f"Creating project {shown}…"):
        project = projects.create_project(url, name, data, space=SearchSpace(**space_kwargs),
                                n_trials=int(st.session_state["w_trials"]), units=units)
    if not call.ok:
        return
    st.session_state[session.PROJECT] = name
    st.session_state.pop("w_name", None)  # the next project gets a fresh default name
    if settings.local_workers:
        n = int(st.session_state["w_workers"])
        try:
            procs = workers.launch_local(project, n, finish=True)
        except (OSError, ValueError) as err:
            st.error(f"project {shown} was created but its workers could not start: {fmt.md(err)}; "
                     "use Continue below once the problem is fixed.")
            return
        local_workers.register_workers(name, procs)
        session.flash("success", f"Project {shown} created; {n} local worker{'s' if n > 1 else ''} started. "
                                "Follow it on the Monitor page.")
    else:
        session.flash("success", f"Project {shown} created. Local workers are off (MAT_INTERP_LOCAL_WORKERS=0): "
                                "the worker service will run it. Follow it on the Monitor page.")
    st.rerun()


def _new_project(existing: list[str]) -> None:
    st.header("New project")
    data: dataset.TrainingData | None = st.session_state.get(session.DATA)
    if data is None:
        st.info("Load and check data on the Data page first.")
        st.page_link("views/data.py", label="Go to Data", icon=":material/upload_file:")
        return
    src = st.session_state.get(session.SOURCE) or {}
    st.caption(f"Data: {fmt.md(src.get('name', '?'))} — {len(data.frame):,} points; X1 = {fmt.md(data.x1_name)}, "
               f"X2 = {fmt.md(data.x2_name)} ({len(data.x2_values)} values), Y = {fmt.md(data.y_name)}.")
    session.init("w_name", _default_name(existing))
    name = st.text_input("Project name", key="w_name", **session.KEEP, max_chars=64,
                         help="Letters, digits, '-', '_' and '.'; it names the study in the database.")
    name_ok = True
    try:
        dataset.validate_project_name(name)
    except dataset.DataError as err:
        st.error(fmt.md(err))
        name_ok = False
    if name_ok and name in existing:
        st.error(f"a project named {fmt.md(repr(name))} exists already: pick another name, or continue it below.")
        name_ok = False
    kwargs = _space_widgets(len(data.frame))
    if st.button("Start training", key="start", type="primary", icon=":material/play_arrow:", disabled=not name_ok):
        _start(name, data, kwargs)


def _current_project(existing: list[str]) -> None:
    name = st.session_state.get(session.PROJECT)
    if not name or name not in existing:
        return
    settings = session.settings()
    url = settings.database_url
    shown = fmt.md(name)
    st.header(f"Project {shown}")
    with session.reported("warning") as call:
        project = projects.open_project(url, name)
        p = projects.progress(project)
    if not call.ok:
        return
    running = local_workers.live_worker_count(name)
    state = "stop requested" if p["stop_requested"] else ("done" if p["done"] else "in progress")
    st.write(
        f"{p['finished']} of {p['target']} trials finished ({p['pruned']} pruned, {p['failed']} failed, "
        f"{p['running']} running) — {state}; best R² {fmt.fmt_value(p['best_value'])}; "
        f"local workers running: {running}."
    )
    st.page_link("views/monitor.py", label="Watch it live on the Monitor page", icon=":material/monitoring:")
    c1, c2 = st.columns(2)
    with c1:
        if st.button("Stop", key="stop", icon=":material/stop:", disabled=p["done"] or p["stop_requested"],
                     help="Every worker, on any machine, ends its current trial and exits."):
            with session.reported():
                projects.request_stop(project)
                st.success(f"Stop requested for {shown}: the workers finish their current epoch and exit.")
    with c2:
        session.init("w_more", 10)
        session.init("w_more_workers", max(1, settings.default_workers))
        m1, m2 = st.columns(2)
        m1.number_input("More trials", min_value=0, step=1, key="w_more", **session.KEEP,
                        help="0 resumes a stopped project up to its current target.")
        m2.number_input("Workers", min_value=1, max_value=256, step=1, key="w_more_workers", **session.KEEP,
                        disabled=not settings.local_workers)
        if st.button("Continue", key="continue", icon=":material/fast_forward:"):
            with session.reported() as call:
                project = projects.add_trials(project, int(st.session_state["w_more"]))
            if not call.ok:
                return
            if settings.local_workers:
                n = int(st.session_state["w_more_workers"])
                try:
                    local_workers.register_workers(name, workers.launch_local(project, n, finish=True))
                except (OSError, ValueError) as err:
                    st.error(f"the workers could not start: {fmt.md(err)}")
                    return
                session.flash("success", f"Project {shown} continues to {project.n_trials} trials with {n} local "
                                        f"worker{'s' if n > 1 else ''}.")
            else:
                session.flash("success", f"Project {shown} continues to {project.n_trials} trials; the worker "
                                        "service will run them.")
            st.rerun()


def main() -> None:
    st.title("Train")
    st.caption("Each project searches network hyper-parameters with Optuna; workers share one study in the "
               "database and may run on any machine that can reach it.")
    session.show_flash()
    existing = common.project_names()
    if existing is None:
        return
    _current_project(existing)
    _new_project(existing)


main()
