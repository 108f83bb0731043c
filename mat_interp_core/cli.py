"""`mat-interp ...` commands: everything the GUI can do, from a terminal."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from mat_interp_core.config import ConfigError, check_database_url, get_settings, mask_url, open_private

def _user_errors() -> tuple[type[Exception], ...]:
    """Errors a user can cause and fix: printed as one sentence, exit status 2."""
    from mat_interp_core.dataset import DataError
    from mat_interp_core.entropy import UnitError
    from mat_interp_core.network import ModelError
    from mat_interp_core.projects import ProjectError
    from mat_interp_core.space import SpaceError

    from mat_interp_core.storage import DatabaseUnavailable

    return (DataError, ProjectError, SpaceError, UnitError, DatabaseUnavailable, ConfigError, ModelError)


_UNIT_FLAGS = {"m_unit": "--m-unit", "h_unit": "--h-unit", "mass_mg": "--mass-mg", "molar_mass_g": "--molar-mass-g"}


def _url(args) -> str:
    """The database URL of --database, else of the settings; a URL that cannot work is a ConfigError here."""
    if args.database is not None:
        return check_database_url(args.database, "--database")
    return check_database_url(get_settings().database_url, "MAT_INTERP_DATABASE_URL")


def _project(args):
    """The project named on the command line, resolved once (the handle every library call takes)."""
    from mat_interp_core import projects

    return projects.open_project(_url(args), args.name)


def _write_csv(frame, out: str, header: list[str] | None = None) -> None:
    """Write `frame`; `header` lines (provenance) go first as '# ' comments (pandas: read_csv(comment='#'))."""
    path = Path(out)
    if path.parent and not path.parent.exists():
        raise _DataError(f"cannot write {out}: folder {path.parent} does not exist")
    with open_private(path, "w", newline="") as fh:
        for line in header or []:
            fh.write(f"# {line}\n")
        frame.to_csv(fh, index=False)
    print(f"wrote {len(frame)} rows to {path}")


class _DataError(Exception):
    pass


def _provenance(project) -> list[str]:
    """Header lines of an export: the project and the exact source files (name, size, SHA-256) behind it."""
    from mat_interp_core import readers

    files = readers.describe_sources(project.units or {})
    return [f"mat-interp project {project.name}", *(f"source file: {line}" for line in files)] if files else []


# ---------------------------------------------------------------- commands


def cmd_demo(args) -> int:
    from mat_interp_core import synthetic

    frame = synthetic.demo_frame(seed=args.seed)
    _write_csv(frame, args.out)
    print(f"mean-field ferromagnet, sample mass {synthetic.DEMO_MASS_MG} mg; columns: {', '.join(frame.columns)}")
    return 0


def _space_from_args(args, base=None):
    from mat_interp_core.space import SearchSpace, parse_range

    base = (base or SearchSpace()).to_dict()
    if args.layers:
        base["layers"] = parse_range(args.layers, "layers", int)
    if args.nodes:
        base["nodes"] = parse_range(args.nodes, "nodes", int)
    if args.lr:
        base["lr"] = parse_range(args.lr, "lr", float)
    if args.solver:
        base["solvers"] = tuple(s.strip().lower() for s in args.solver.split(","))
    if getattr(args, "x2_transform", None):
        base["x2_transforms"] = tuple(s.strip().lower() for s in args.x2_transform.split(","))
    for key in ("epochs", "patience", "min_resource", "seed", "objective", "keep_models", "refine_epochs"):
        value = getattr(args, key, None)
        if value is not None:
            base[key] = value
    return SearchSpace.from_dict(base)


def cmd_train(args) -> int:
    from mat_interp_core import dataset, projects, storage, workers

    url = _url(args)
    name = dataset.validate_project_name(args.name)
    if args.workers < 1:  # every setting is checked before anything is stored
        raise dataset.DataError(f"--workers must be >= 1; got {args.workers}")
    if args.more is None:
        if not args.csv:
            raise dataset.DataError("a new project needs --csv FILE [FILE ...] --x1 COL --x2 COL --y COL "
                                    "(or --more N to continue one)")
        space = _space_from_args(args)
        data, units = _training_data_from_args(args)
        if args.trials < 1:
            raise dataset.DataError(f"--trials must be >= 1; got {args.trials}")
        project = projects.create_project(url, name, data, space=space, n_trials=args.trials, units=units)
        print(f"project {name}: {len(data.frame)} points, {len(data.x2_values)} {data.x2_name} set points; "
              f"study stored in {mask_url(url)}")
    else:
        project = projects.add_trials(projects.open_project(url, name), args.more)
        print(f"project {name}: continuing to {project.n_trials} finished trials")
    storage.init_database(url)
    interrupted = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())  # a KeyboardInterrupt can be lost in a GC callback
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    procs = workers.launch_local(project, args.workers, finish=True)  # they also run the steps after the search
    ok = _follow(project, procs, interrupted)
    if not interrupted.is_set():
        _print_best(project)
        if ok:
            started = time.perf_counter()
            ok = _follow_after_search(project, procs, interrupted)
    if interrupted.is_set():
        print("\nstopping the workers (a running trial ends as FAIL; what is finished stays)...", file=sys.stderr)
        workers.stop_local(procs)
        p = projects.progress(project)
        print(f"stopped: {p['finished']} of {p['target']} trials finished; "
              f"continue with: mat-interp train {name} --more 0", file=sys.stderr)
        return 130
    if ok:
        _print_after_search(project, time.perf_counter() - started)
    return 0 if ok else 1


def _follow_after_search(project, procs, interrupted: threading.Event) -> bool:
    """Progress bars (with ETA) of the steps the workers run after the search, until they have all exited."""
    from tqdm import tqdm

    from mat_interp_core import refine, uncertainty, validation

    space = project.space
    if space.refinement_epochs:
        top, candidates, epochs = refine.plan(space)
        print(f"refining the best {candidates} trials ({epochs} epochs, no early stop, {refine.DEFAULT_SEEDS} seed(s) "
              f"each, {refine.DEFAULT_SOLVER}; off with --refine-epochs 0) on {len(procs)} worker(s) and keeping the "
              f"best {top}...", flush=True)
    bar, step = None, None
    try:
        while True:
            r = refine.refine_progress(project)
            if r["total"] and r["done"] < r["total"]:
                label, total, n = "refinement", r["total"], r["fraction"] * r["total"]
                eta, running = r["eta_s"], r["running"]
            elif space.objective == "holdout" and (v := validation.validation_status(project))[0] < v[1]:
                label, total, n, eta, running = "held-out validation", v[1], v[0], None, 0
            else:
                c = uncertainty.calibration_progress(project)  # total 0: none to train (no bar)
                label, total, n, eta, running = "|ΔS_M| band folds", c["total"], c["done"], c["eta_s"], c["running"]
            if label != step:
                if bar is not None:
                    bar.n = bar.total
                    bar.close()
                bar = tqdm(total=total, desc=label, unit="model", dynamic_ncols=True, file=sys.stdout, disable=None,
                           bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}]") if total else None
                step = label
            if bar is not None:
                bar.n = min(n, total)
                if eta is not None:
                    bar.set_postfix_str(f"ETA {eta:.0f} s, {running} running")
                bar.refresh()
            if not any(pr.poll() is None for pr in procs) or interrupted.wait(1.0):
                break
    finally:
        if bar is not None:
            bar.close()
    if interrupted.is_set():
        return False
    done, total = refine.refine_status(project)
    if done < total or any(pr.returncode for pr in procs):
        from mat_interp_core.workers import log_dir

        failed = [f"{pr.pid} (exit code {pr.returncode})" for pr in procs if pr.returncode]
        why = f"worker {', '.join(failed)} failed" if failed else "the workers stopped"
        print(f"{why} before the steps after the search were done (refined {done} of {total}); "
              f"continue with: mat-interp train {project.name} --more 0; logs in {log_dir()}", file=sys.stderr)
        return False
    return True


def _print_after_search(project, seconds: float) -> None:
    """What the steps after the search produced: the refined models, the held-out scores, the band's folds."""
    from mat_interp_core import uncertainty, validation
    if project.space.refinement_epochs:
        _print_refined(project, seconds)
    if project.space.objective == "holdout":
        _print_validation(validation.validation_frame(project), project.space.objective)
    reason = uncertainty.calibration_status(project)
    print(f"|ΔS_M| band not calibrated: {reason}" if reason else "the |ΔS_M| band's held-out folds are trained")


def _training_data_from_args(args):
    """Read --csv (CSV/TSV or Quantum Design .dat, one or more files), choose columns, roles and sweep branch;
    print what the files said (set points, units, mass, dropped rows). Returns (TrainingData, units to store)."""
    from mat_interp_core import dataset, readers

    loaded = readers.load(args.csv, max_mb=get_settings().max_upload_mb)
    roles = readers.guess_roles(loaded)
    roles = readers.Roles(args.temperature or roles.temperature, args.field or roles.field)
    x1, x2, y = args.x1, args.x2, args.y or loaded.moment
    if not (x1 and x2) and roles.temperature and roles.field:
        x2 = x2 or readers.stepped_axis(loaded.frame, roles.temperature, roles.field, args.set_point_tol)
        x1 = x1 or (roles.field if x2 == roles.temperature else roles.temperature)
    if not (x1 and x2 and y):
        unfound = [what for what, found in (("a temperature in K", roles.temperature),
                                            ("a field in Oe, kOe, mT, T or A/m", roles.field),
                                            ("a moment in emu, emu/g, A m2/kg or muB/f.u.", y)) if not found]
        raise dataset.DataError("a new project needs --x1 COL --x2 COL --y COL (they are guessed only for a file "
                                "whose headers name a temperature, a field and a moment with units in brackets, "
                                "e.g. 'H (Oe)'; this file has no column of numbers headed by " + ", nor by ".join(unfound) + ")")
    for note in loaded.notes:
        print(note)
    x2_values = dataset.parse_values(args.x2_values, what="--x2-values") if args.x2_values else None
    data, facts = readers.prepare(loaded, x1, x2, y, tolerance=args.set_point_tol, sweep=args.sweep,
                                  drop_invalid=args.drop_invalid, x2_values=x2_values, roles=roles)
    units = readers.project_units(loaded, data, facts, x1_unit=args.x1_unit, x2_unit=args.x2_unit,
                                  y_unit=args.y_unit, mass_mg=args.mass_mg, molar_mass_g=args.molar_mass_g)
    if data.n_dropped:
        print(f"dropped {data.n_dropped} rows with missing, infinite or huge values")
    for note in [*facts.get("notes", []), *facts.get("data_notes", [])]:
        print(note)
    shown = ", ".join(f"{v:.5g}" for v in data.x2_values[:12]) + (", ..." if len(data.x2_values) > 12 else "")
    kind = "read-backs grouped" if data.set_points.jittered else "exact values"
    print(f"{data.x2_name}: {len(data.x2_values)} set points ({shown}); {kind} with set-point tolerance "
          f"{data.set_point_tol:g} (--set-point-tol)")
    said = [f"{k} in {units[k]}" for k in ("x1", "x2", "y") if units.get(k)]
    mass = f", sample mass {units['mass_mg']:g} mg from the {units['mass_from']}" if "mass_mg" in units else ""
    protocol = f"; protocol {units['protocol']}" if units.get("protocol") else ""
    print(f"units: {', '.join(said) or 'none named'}{mass}{protocol}; sweep {units.get('sweep')}")
    return data, units


def _follow(project, procs, interrupted: threading.Event) -> bool:
    """Progress bar until the study has its trials or every local worker has exited; False when they exited first."""
    from tqdm import tqdm

    from mat_interp_core import projects

    p = projects.progress(project)
    bar = tqdm(total=p["target"], initial=min(p["finished"], p["target"]), unit="trial", dynamic_ncols=True,
               file=sys.stdout, disable=None)
    try:
        while True:
            p = projects.progress(project)
            bar.total = p["target"]
            bar.n = min(p["finished"], p["target"])
            best = "-" if p["best_value"] is None else f"{p['best_value']:.5f}"
            bar.set_postfix_str(f"pruned {p['pruned']}, failed {p['failed']}, running {p['running']}, best R² {best}")
            bar.refresh()
            alive = [pr for pr in procs if pr.poll() is None]
            if p["done"] or not alive or interrupted.wait(1.0):  # done: the workers go on with the steps after it
                break
    finally:
        bar.close()
    if not p["done"] and not interrupted.is_set():
        from mat_interp_core.workers import log_dir

        print(f"the workers stopped before the study had its trials ({p['finished']} of {p['target']}); "
              f"logs in {log_dir()}", file=sys.stderr)
        return False
    return True


def _print_best(project) -> None:
    from mat_interp_core import projects

    p = projects.progress(project)
    if p["best_trial"] is None:
        print("no trial completed")
        return
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in p["best_params"].items())
    print(f"best trial {p['best_trial']}: R² = {p['best_value']:.6f} ({params}); "
          f"{p['complete']} complete, {p['pruned']} pruned, {p['failed']} failed in {p['elapsed_s']:.0f} s")


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def cmd_worker(args) -> int:
    from mat_interp_core import projects, signals, workers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    signals.install_signal_handlers(stop)
    url = _url(args)
    if args.finish and not (args.name and args.exit_when_idle):
        raise _DataError("--finish needs a project NAME and --exit-when-idle")
    print(f"worker {os.getpid()} on {mask_url(url)} serving {args.name or 'any project'}", flush=True)
    budget = workers.memory_budget_mb()
    try:
        n = workers.run_worker(url, args.name, exit_when_idle=args.exit_when_idle, threads=args.threads, stop_event=stop,
                               max_rss_mb=budget)
        print(f"worker {os.getpid()} ran {n} trials", flush=True)
        if args.finish and not stop.is_set():
            def progress(done: int, total: int, message: str) -> None:
                print(f"finishing {args.name}: {done}/{total} {message}", flush=True)
                if stop.is_set():
                    raise KeyboardInterrupt("stopped by a signal")

            from mat_interp_core.training import StopRequested

            try:
                if workers.finish_project(projects.open_project(url, args.name), progress=progress, max_rss_mb=budget, stop=stop,
                                          slot=args.slot):
                    print(f"worker {os.getpid()}: project {args.name} finished", flush=True)
            except (KeyboardInterrupt, StopRequested):
                print(f"worker {os.getpid()}: stopped while finishing {args.name} (what was done is kept)", flush=True)
    except workers.WorkerRecycle as recycle:
        # what was finished is stored; the new process image skips it (finished trials, refined models)
        print(f"worker {os.getpid()} ran {recycle.args[0]}; restarting to release memory", flush=True)
        signals.restart_process(["-m", "mat_interp_core", *sys.argv[1:]], stop)
    if stop.is_set():  # a stop signal: all is stored; skip TensorFlow's interpreter teardown (seconds on a busy CPU)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def cmd_status(args) -> int:
    import pandas as pd

    from mat_interp_core import projects

    project = _project(args)
    table = projects.trials_frame(project)
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_columns", None):
        print(table.drop(columns=["note"]).to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    p = projects.progress(project)
    print(f"\n{p['finished']} of {p['target']} finished ({p['complete']} complete, {p['pruned']} pruned), "
          f"{p['failed']} failed, {p['running']} running")
    _print_best(project)
    _print_data_facts(project)
    return 0


def _print_data_facts(project) -> None:
    """What the project's data came from: source files (name, size, SHA-256), set points, units, mass, branch."""
    from mat_interp_core import readers

    units = project.units or {}
    for line in readers.describe_sources(units):
        print(f"source file: {line}")
    if units.get("set_points"):
        points = ", ".join(f"{v:.5g}" for v in units["set_points"][:12]) + (", ..." if len(units["set_points"]) > 12 else "")
        print(f"set points: {points} (tolerance {units.get('set_point_tol', 0.1):g}); sweep {units.get('sweep')}"
              + (f"; protocol {units['protocol']}" if units.get("protocol") else ""))
    if units.get("mass_mg"):
        print(f"sample mass: {units['mass_mg']:g} mg (from the {units.get('mass_from', 'option')})")


def cmd_projects(args) -> int:
    from mat_interp_core import projects

    url = _url(args)
    items = projects.list_projects(url)
    if not items:
        print(f"no projects in {mask_url(url)}")
        return 0
    for p in items:
        prog = projects.progress(projects.ProjectHandle(url, p))
        best = "-" if prog["best_value"] is None else f"{prog['best_value']:.5f}"
        print(f"{p.name:24s} {p.n_rows:7d} points  {prog['finished']:4d}/{p.n_trials:<4d} trials  best R² {best}  "
              f"Y={p.y_name}({p.x1_name}, {p.x2_name})")
    return 0


def cmd_simulate(args) -> int:
    from mat_interp_core import dataset, grids, simulate

    project = _project(args)
    if args.x1 is None or args.x2 is None:  # the Simulate page's defaults: five times finer than measured
        default_x1, default_x2 = grids.default_axes(project.data)
        print(f"grid: --x1 {args.x1 or default_x1} --x2 {args.x2 or default_x2}")
    x1 = dataset.parse_axis(args.x1 or default_x1, what="--x1")
    x2 = dataset.parse_axis(args.x2 or default_x2, what="--x2")
    model, models = simulate.model_set(project, args.ensemble)
    frame = simulate.simulate(project, x1, x2, max_points=get_settings().max_grid_points, model=model)
    _write_csv(frame, args.out, _provenance(project) + [f"models: {models}"])
    print(f"models: {models}")
    return 0


def cmd_fitted(args) -> int:
    from mat_interp_core import simulate

    project = _project(args)
    model, models = simulate.model_set(project, args.ensemble)
    _write_csv(simulate.fitted(project, model=model), args.out,
               _provenance(project) + [f"models: {models}"])
    print(f"models: {models}")
    return 0


def cmd_export(args) -> int:
    from mat_interp_core import models

    data = models.best_bytes(_project(args))
    with open_private(args.out, "wb") as fh:
        fh.write(data)
    print(f"wrote {args.out} ({len(data)} bytes): mat_interp_core.network.register_layers(), then "
          "keras.saving.load_model(...).predict([[x1, x2]]) gives Y in the data's units")
    return 0


def cmd_delete(args) -> int:
    from mat_interp_core import projects

    projects.delete_project(_project(args))
    print(f"deleted project {args.name}")
    return 0


# ---------------------------------------------------------------- the science: |ΔS_M|, baselines, validation


def _units_from_args(project, args):
    """The |ΔS_M| units: --m-unit and --h-unit read like header units ('EMU' is emu, 'tesla' T), then the project's."""
    from mat_interp_core import readers, simulate

    m_unit, h_unit = (readers.canonical_unit(u) if u else u for u in (args.m_unit, args.h_unit))
    return simulate.project_units(project, m_unit=m_unit, h_unit=h_unit, mass_mg=args.mass_mg,
                                  molar_mass_g=args.molar_mass_g)


def _lifts_from_args(args):
    """The --lift spans (K) of the TEC figures, or None for the library's default (3 and 10 K)."""
    from mat_interp_core import dataset, entropy

    if args.lift is None:
        return None
    try:
        return entropy.parse_lifts(dataset.parse_values(args.lift, what="--lift"))
    except ValueError as err:
        raise _DataError(f"--lift: {err}") from None


def _dh_from_args(args):
    from mat_interp_core import dataset

    return None if args.dh is None else dataset.parse_values(args.dh, what="--dh")


def _print_table(frame, float_format=lambda v: f"{v:.4g}") -> None:
    import pandas as pd

    with pd.option_context("display.max_rows", None, "display.width", 220, "display.max_columns", None,
                           "display.max_colwidth", 60):
        print(frame.to_string(index=False, float_format=float_format, na_rep="-"))


def _progress(done: int, total: int, message: str) -> None:
    print(f"  [{done}/{total}] {message}", flush=True)


def cmd_entropy(args) -> int:
    from mat_interp_core import entropy, network, report, simulate

    project = _project(args)
    units = _units_from_args(project, args)
    if args.source == "training" and args.ensemble is not None:
        raise _DataError("--ensemble applies to the simulated grid only (drop it, or use --from simulated)")
    if args.source == "training" and args.compare:
        raise _DataError("--compare applies to the simulated grid only (drop it, or use --from simulated)")
    if args.source == "training" and args.answer:
        raise _DataError("--answer applies to the simulated grid only (drop it, or use --from simulated)")
    if args.ensemble is not None and args.ensemble < 1:
        raise _DataError(f"--ensemble must be >= 1; got {args.ensemble}")
    compare = _compare_from_args(args)
    lifts = _lifts_from_args(args)
    network.configure_threads(os.cpu_count() or 1)
    kwargs = dict(dh_tesla=_dh_from_args(args), t_step=args.t_step, h_step_t=args.h_step_t, method=args.method,
                  max_points=get_settings().max_grid_points)
    try:
        if args.source == "training":
            result = simulate.project_entropy(project, units, source="training", **kwargs)
            figures = result.figures if lifts is None else entropy.with_tec(result.figures, result.curves, lifts)
            curves, rep = result.curves, None
        else:
            rep = report.entropy_report(project, units, k=args.ensemble, baselines=compare, answer=args.answer,
                                        lifts=entropy.DEFAULT_LIFTS_K if lifts is None else lifts, **kwargs)
            result, figures = rep.network, rep.figures
            # the CSV: the network's curves, or every source with a source column when compared
            curves = rep.curves if compare else result.curves
    except ValueError as err:
        if isinstance(err, _user_errors()):
            raise
        raise _DataError(str(err)) from None
    where = "the training data" if rep is None else (
        f"the simulated {result.grid_description}, field step {_field_step(result, units):.3g} T, {result.models}")
    print(f"|ΔS_M| in J/(kg·K) ({args.method}) from {where}; {units.describe()}")
    if result.band_note:
        print(result.band_note)
    if result.choice is not None:
        print("held-out |ΔS_M| error of each method, J/(kg·K): " + ", ".join(
            f"{m} {e:.3g}" + (" (answers)" if c else "") for m, e, c in
            zip(result.choice["method"], result.choice["error_J_per_kgK"], result.choice["answers"])))
    for line in ([] if rep is None else rep.warnings):
        print(f"warning: {line}")
    for label, reason in ({} if rep is None else rep.errors).items():
        print(f"{label}: not computed: {reason}", file=sys.stderr)
    _print_table(_figures_for_print(figures))
    bounds = _bounds_for_print(figures)
    if bounds is not None:
        print("the same figures over the 90 % band (of its lower and upper edge curves):")
        _print_table(bounds)
    if args.out:
        _write_csv(curves, args.out, _provenance(project) + [
            line for line in (result.models and f"models: {result.models}", result.band_note) if line])
    return 0


def _compare_from_args(args) -> list[str]:
    """The --compare baselines (keys of baselines.BASELINES), checked."""
    from mat_interp_core.baselines import BASELINES

    names = [v.strip().lower() for v in (getattr(args, "compare", None) or "").split(",") if v.strip()]
    unknown = [v for v in names if v not in BASELINES]
    if unknown:
        raise _DataError(f"--compare: unknown baseline {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    return names


def _figures_for_print(figures):
    """The figures-of-merit table as printed: the answer's peak with its 90 % band (from its low to its high
    end), the other figures' bounds left to :func:`_bounds_for_print`."""
    from mat_interp_core.report import NETWORK

    figures = figures.copy()
    if "peak_band" in figures:
        network = figures["source"] == NETWORK if "source" in figures else [True] * len(figures)
        figures.insert(1 + ("source" in figures), "peak (90 % band)", [
            f"{p:.4g}" if not n else f"{p:.4g} ({lo:.4g} to {hi:.4g})" if lo == lo else f"{p:.4g} (band not calibrated)"
            for p, lo, hi, n in zip(figures.peak_J_per_kgK, figures.peak_low, figures.peak_high, network)])
    bounds = [c for c in figures if c.endswith(("_low", "_high"))]
    return figures.drop(columns=[c for c in ("peak_band", "peak_mean", "T_peak_mean", "members", *bounds)
                                 if c in figures])


def _bounds_for_print(figures):
    """The answer's other figures of merit as 'low to high' over the band (entropy.merit_bounds), one row per
    ΔH; None when the figures have no calibrated band."""
    import pandas as pd

    from mat_interp_core.report import NETWORK

    names = [c[: -len("_low")] for c in figures if c.endswith("_low") and c != "peak_low"]
    rows = figures[figures["source"] == NETWORK] if "source" in figures else figures
    if not names or not rows[[f"{n}_low" for n in names]].notna().any().any():
        return None
    return pd.DataFrame({"dH_T": rows["dH_T"], **{n: [f"{lo:.4g} to {hi:.4g}" for lo, hi in
                                                      zip(rows[f"{n}_low"], rows[f"{n}_high"])] for n in names}})


def _field_step(result, units) -> float:
    import numpy as np

    from mat_interp_core.entropy import to_tesla

    h = np.asarray(result.h_axis, dtype=float)
    return float("nan") if h.size < 2 else float(to_tesla(np.median(np.diff(h)), units.h_unit))


def cmd_compare(args) -> int:
    from mat_interp_core import network, validation

    project = _project(args)
    units = _units_from_args(project, args)
    dh = _dh_from_args(args) or [5.0]
    network.configure_threads(os.cpu_count() or 1)
    try:
        table = validation.compare_methods(project, units, dh_tesla=dh, k=args.ensemble, t_step=args.t_step,
                                           h_step_t=args.h_step_t, method=args.method, n_curves=args.curves,
                                           max_points=get_settings().max_grid_points)
    except ValueError as err:
        if isinstance(err, _user_errors()):
            raise
        raise _DataError(str(err)) from None
    held = ", ".join(f"{v:g}" for v in table.attrs.get("holdout_x2", []))
    print(f"|ΔS_M| in J/(kg·K) on the {table.attrs.get('grid', 'simulated grid')}; {units.describe()}; "
          f"leave-one-X2-out RMSE (Y units) over the held-out curves {held}")
    shown = table.drop(columns=["RCP_J_per_kg"]).copy()
    if shown["peak_std"].isna().all():
        shown = shown.drop(columns=["peak_std"])
    _print_table(shown)
    if args.out:
        _write_csv(table, args.out, _provenance(project))
    return 0


def cmd_validate(args) -> int:
    from mat_interp_core import network, validation

    network.configure_threads(args.threads or os.cpu_count() or 1)
    project = _project(args)
    print(f"held-out validation of the best {args.top} trials of {args.name} (objective: {project.space.objective})",
          flush=True)
    frame = validation.validate_project(project, top=args.top, n_curves=args.curves, force=args.force,
                                        progress=_progress)
    _print_validation(frame, project.space.objective)
    return 0


def _print_validation(frame, objective: str) -> None:
    if frame.empty:
        print("no trial has a held-out score")
        return
    _print_table(frame, float_format=lambda v: f"{v:.6g}")
    best_r2 = frame.loc[frame["R2"].idxmax()]
    best_ho = frame.loc[frame["holdout_rmse"].idxmin()]
    print(f"best by training R²: trial {int(best_r2.trial)} (held-out RMSE {best_r2.holdout_rmse:.4g}); "
          f"best by held-out RMSE: trial {int(best_ho.trial)} ({best_ho.holdout_rmse:.4g}); "
          f"the project's objective '{objective}' picks trial "
          f"{int((best_ho if objective == 'holdout' else best_r2).trial)}")


def cmd_refine(args) -> int:
    from mat_interp_core import network, refine

    project = _project(args)
    top, candidates, epochs = refine.plan(project.space, top=args.top,
                                          candidates=args.candidates, epochs=args.epochs)
    seeds = refine.DEFAULT_SEEDS if args.seeds is None else args.seeds
    network.configure_threads(args.threads or os.cpu_count() or 1)
    print(f"refining the best {candidates} trials of {args.name} ({epochs} epochs, no early stop, {seeds} "
          f"seed(s) each, solver {args.solver}, from {args.start}) and keeping the best {top}", flush=True)
    started = time.perf_counter()
    done = refine.refine_project(project, top=top, candidates=candidates, epochs=epochs, seeds=seeds,
                                 tolerance=args.tolerance, solver=args.solver, start=args.start, force=args.force,
                                 progress=_progress)
    if not done:
        print("nothing to refine: the best trials are refined with these settings already (or the same way for more "
              "epochs); --force refines them again")
    _print_refined(project, time.perf_counter() - started)
    return 0


def _print_refined(project, seconds: float) -> None:
    from mat_interp_core import models, refine

    refined = refine.refined_trials(project)
    kept = models.ranked(project)
    print(f"kept {len(kept)} models ({seconds:.0f} s), best first:")
    for number in kept:
        attrs = refined.get(number)
        what = (f"refined ({attrs['refined']['epochs']} epochs x {attrs['refined']['seeds']} seeds, "
                f"{attrs['refined'].get('solver', 'trial')}"
                f"{', from the search model' if attrs['refined'].get('start') == 'search' else ''}), "
                f"R² {attrs['refined_r2']:.6f}" if attrs else "not refined")
        print(f"  trial {number}: {what}")


def _calibrate(project, force: bool = False) -> None:
    """Train the held-out folds of the |ΔS_M| band (mat_interp_core.uncertainty), when there is an interior field."""
    from mat_interp_core import network, uncertainty

    network.configure_threads(os.cpu_count() or 1)
    reason = uncertainty.calibration_status(project)
    if not reason and not force:
        print("the |ΔS_M| band's held-out folds are up to date")
        return
    if reason.startswith("the data has"):
        print(f"|ΔS_M| band not calibrated: {reason}")
        return
    print("training the held-out folds of the |ΔS_M| band (the best configuration, each interior field left out "
          "in turn)...", flush=True)
    started = time.perf_counter()
    uncertainty.calibrate_project(project, progress=_progress, force=force)
    print(f"calibrated in {time.perf_counter() - started:.0f} s")


def cmd_calibrate(args) -> int:
    _calibrate(_project(args), force=args.force)
    return 0


def cmd_suggest(args) -> int:
    """Rank the X2 values whose measurement would most shrink the |ΔS_M| band over the --dh range."""
    import pandas as pd

    from mat_interp_core import network, simulate, uncertainty

    project = _project(args)
    units = _units_from_args(project, args)
    network.configure_threads(os.cpu_count() or 1)
    result = simulate.project_entropy(project, units, dh_tesla=_dh_from_args(args), t_step=args.t_step,
                                      h_step_t=args.h_step_t, max_points=get_settings().max_grid_points,
                                      answer=args.answer)
    cal = result.calibration
    if not cal.calibrated:
        raise _DataError(f"nothing to rank: the |ΔS_M| band is not calibrated ({cal.reason})")
    dhs = list(result.figures["dH_T"])
    table = uncertainty.result_suggestions(result)
    unit, where = ("K", "where it is widest in each gap between isotherms") if cal.isotherm else (units.h_unit,
                                                                                                   "at the peak")
    print(f"measure next (X2 in {unit}; M(T) data: also the temperatures between the readings), ranked by the "
          f"expected shrink of the nominal 90 % |ΔS_M| band {where}, mean over ΔH = {', '.join(f'{d:g}' for d in dhs)} "
          f"T; models: {result.models}")
    top = table.head(args.top)
    _print_table(pd.DataFrame({"measure next": uncertainty.suggestion_text(top, unit),
                               "band shrinks by J/(kg·K)": top["reduction"], "% of the band": top["reduction_pct"]}))
    return 0


def _add_answer_arg(p) -> None:
    p.add_argument("--answer", help="the method that answers, with the band of its own held-out folds: a method of the "
                   "held-out table `entropy` prints (e.g. network, pchip), or held-out for the smallest score "
                   "(default: the networks; for M(T) sweeps below a wide gap just above zero field network+rbf "
                   "from 0 T or a remanent field, arrott from a higher first field; for M(T) readings that barely "
                   "scatter arrott, network+arrott from 0 T or a remanent field)")


def _add_unit_args(p) -> None:
    p.add_argument("--m-unit", help="unit of M: emu, emu/g, 'A m2/kg' or muB/f.u. (default: the project's)")
    p.add_argument("--h-unit", help="unit of H: Oe, kOe, mT, T or A/m (default: the project's)")
    p.add_argument("--mass-mg", type=float, help="sample mass in mg (needed for emu; default: the project's)")
    p.add_argument("--molar-mass-g", type=float, help="g per mole of formula units (needed for muB/f.u.)")
    p.add_argument("--t-step", type=float, help="temperature step of the simulated grid in K "
                   "(default: min(0.1 K, measured spacing / 5))")
    p.add_argument("--h-step-t", type=float, help="field step of the simulated grid in tesla (default 0.02)")
    p.add_argument("--method", choices=("maxwell", "isothermal"), default="maxwell")


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from mat_interp_core.setpoints import DEFAULT_TOLERANCE

    parser = argparse.ArgumentParser(prog="mat-interp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help: str, project: bool = True, project_optional: bool = False):
        p = sub.add_parser(name, help=help, description=help)
        if project:
            p.add_argument("name", nargs="?" if project_optional else None, help="project name (letters, digits, - _ .)")
        p.add_argument("--database", help="database URL (default: MAT_INTERP_DATABASE_URL or the SQLite file in MAT_INTERP_HOME)")
        p.set_defaults(func=func)
        return p

    p = add("demo", cmd_demo, "write a demo dataset M(T, H) of a mean-field ferromagnet", project=False)
    p.add_argument("--out", default="demo.csv")
    p.add_argument("--seed", type=int, default=0)

    p = add("train", cmd_train, "validate a CSV, store the project and run its hyper-parameter search")
    p.add_argument("--csv", nargs="+", metavar="FILE",
                   help="CSV/TSV or Quantum Design .dat file(s); several files (one per field or temperature) merge")
    p.add_argument("--set-point-tol", type=float, default=DEFAULT_TOLERANCE, dest="set_point_tol",
                   help="X2 readings group into set points when a group's spread is at most this fraction of the gap "
                        "to the next set point (default 0.1)")
    p.add_argument("--sweep", help="sweep branch to train on: warming, cooling (up, down for field sweeps), first "
                                   "(each curve's first sweep up to its first turnaround: of a hysteresis loop, the "
                                   "virgin curve) or all (default: the branch with more rows)")
    p.add_argument("--temperature", help="the temperature column (role; default: the header with unit K)")
    p.add_argument("--field", help="the field column (role; default: the header with unit Oe, kOe, mT or T)")
    p.add_argument("--x1", help="column of the first scan axis (e.g. temperature)")
    p.add_argument("--x2", help="column of the second scan axis (e.g. field)")
    p.add_argument("--y", help="column of the measured quantity")
    p.add_argument("--x2-values", help="train on these X2 values only, e.g. 100,1000,50000")
    p.add_argument("--x1-unit", default="")
    p.add_argument("--x2-unit", default="")
    p.add_argument("--y-unit", default="")
    p.add_argument("--mass-mg", type=float, help="sample mass in mg, stored for |ΔS_M| when Y is a moment in emu")
    p.add_argument("--molar-mass-g", type=float, help="g per mole of formula units, stored for |ΔS_M| (muB/f.u.)")
    p.add_argument("--drop-invalid", action="store_true", help="drop rows with missing or infinite values")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--more", type=int, help="continue an existing project with N more trials")
    p.add_argument("--workers", type=int, default=get_settings().default_workers)
    p.add_argument("--solver", help="adam, rmsprop, sgd, nesterov, or a comma list (default: all four)")
    p.add_argument("--x2-transform", help="how the networks see the field (X2; X1 of isotherms): linear (the paper's), "
                   "asinh, cbrt, or a comma list the search picks from (default: asinh)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--min-resource", type=int, dest="min_resource")
    p.add_argument("--layers", help="MIN:MAX (default 2:10)")
    p.add_argument("--nodes", help="MIN:MAX (default 50:200)")
    p.add_argument("--lr", help="MIN:MAX (default 5e-4:5e-3)")
    p.add_argument("--objective", choices=("train_r2", "holdout"))
    p.add_argument("--keep-models", type=int, dest="keep_models")
    p.add_argument("--refine-epochs", type=int, dest="refine_epochs",
                   help="after the search, refine the best trials for N epochs without early stop "
                        "(default: --epochs; 0: off, the paper's method only)")
    p.add_argument("--seed", type=int)

    p = add("worker", cmd_worker, "run one worker process against a database", project_optional=True)
    p.add_argument("--exit-when-idle", action="store_true", help="exit when no project has trials to run")
    p.add_argument("--threads", type=int, help="TensorFlow threads (default: cores / workers)")
    p.add_argument("--finish", action="store_true",
                   help="with NAME and --exit-when-idle: once the search is done, run the steps after it "
                        "(the refinement unless the project turned it off, then held-out validation when the "
                        "objective is 'holdout')")
    p.add_argument("--slot", type=int, default=0,
                   help="with --finish: this worker's index among those sharing the refinement (slot 0 runs the "
                        "steps after it)")

    add("status", cmd_status, "print the trial table and the best trial")
    add("projects", cmd_projects, "list the projects", project=False)
    add("delete", cmd_delete, "delete a project: its study, data and models")

    p = add("simulate", cmd_simulate, "predict the fine grid with the project's models (every kept one by default)")
    p.add_argument("--x1", help="START:STOP:STEP or v1,v2,... (default: as on the Simulate page, a step of 1/5 "
                   "of the median measured spacing)")
    p.add_argument("--x2", help="START:STOP:STEP or v1,v2,... (default: as on the Simulate page, a step of 1/5 "
                   "of the smallest gap between measured curves)")
    p.add_argument("--ensemble", type=int, help="average the best K models and add their spread (default: every "
                   "kept model)")
    p.add_argument("--out", required=True)

    p = add("fitted", cmd_fitted, "the model's values at the training points")
    p.add_argument("--ensemble", type=int, help="the best K models (default: every kept model)")
    p.add_argument("--out", required=True)

    p = add("export-model", cmd_export, "write the best model as a .keras file (predicts Y in the data's units)")
    p.add_argument("--out", required=True)
    p = add("entropy", cmd_entropy, "magnetic entropy change |ΔS_M|(T, ΔH) in J/(kg·K) and its figures of merit "
            "(X1 must be the temperature in K)")
    p.add_argument("--dh", help="field changes in tesla, e.g. 1,2,3,4,5 (default: every measured field above the lowest)")
    p.add_argument("--from", dest="source", choices=("simulated", "training"), default="simulated",
                   help="the simulated fine grid (default) or the training data itself")
    p.add_argument("--ensemble", type=int, help="the best K networks alone (default: the default answer, as --answer says, "
                   "as on the pages)")
    _add_answer_arg(p)
    p.add_argument("--lift", help="temperature spans ΔT_lift in K of the TEC figures, e.g. 3,10 (the default)")
    p.add_argument("--compare", help="baselines beside the network on the same grid, e.g. linear,pchip (the Entropy "
                   "page's 'compare with'; the coarse data's own |ΔS_M| is always in the table)")
    _add_unit_args(p)
    p.add_argument("--out", help="write the |ΔS_M|(T) curves to this CSV (every source, with a source column, "
                   "when --compare is given)")

    p = add("calibrate", cmd_calibrate, "train the held-out folds behind the |ΔS_M| band (train does it after the "
            "search)")
    p.add_argument("--force", action="store_true", help="train them again even when up to date")

    p = add("suggest", cmd_suggest, "rank the fields (isotherms: the temperatures), and for M(T) data finer "
            "temperature steps around the peak, whose measurement would most shrink the |ΔS_M| band")
    p.add_argument("--dh", help="field changes in tesla you care about, e.g. 1,2,3,4,5 (default: every measured one)")
    p.add_argument("--top", type=int, default=5, help="how many suggestions to print")
    _add_answer_arg(p)
    _add_unit_args(p)

    p = add("compare", cmd_compare, "|ΔS_M| of linear, PCHIP, cubic-spline, RBF, kernel-ridge, random-forest and MLP "
            "baselines, the best network and the ensemble, side by side")
    p.add_argument("--dh", help="field change(s) in tesla (default 5)")
    p.add_argument("--ensemble", type=int, help="ensemble size (default: every kept model, 10 unless set)")
    p.add_argument("--curves", type=int, default=3, help="interior X2 curves held out (when validation has not chosen them)")
    _add_unit_args(p)
    p.add_argument("--out", help="write the comparison to this CSV")

    p = add("validate", cmd_validate, "retrain the best trials with interior X2 curves held out; store holdout_rmse")
    p.add_argument("--top", type=int, default=5, help="how many of the best trials (by training R²) to score")
    p.add_argument("--curves", type=int, default=3, help="how many interior X2 curves to hold out, one at a time")
    p.add_argument("--force", action="store_true", help="rescore trials that already have a held-out score")
    p.add_argument("--threads", type=int, help="TensorFlow threads (default: all cores)")

    p = add("refine", cmd_refine, "retrain the best trials for the full epoch budget without early stop and keep "
            "the best refined models (the ensemble)")
    p.add_argument("--top", type=int, help="refined models to keep (default: the project's keep-models)")
    p.add_argument("--candidates", type=int, help="how many of the best trials (by search R²) to refine "
                   "(default: --top)")
    p.add_argument("--epochs", type=int, help="epochs of each refined model (default: the project's refine-epochs, "
                   "its search epochs unless set)")
    p.add_argument("--seeds", type=int, help="networks averaged per configuration (default 1)")
    p.add_argument("--start", choices=("scratch", "search"), default="scratch",
                   help="scratch (default): new weights; search: go on from the search's stored model (cheaper, "
                        "and worse on bench/refine_budget.py's cases)")
    p.add_argument("--tolerance", type=float,
                   help="also drop refined models whose 1 - R² exceeds this x the best one's (default: "
                        "off, every refined model is kept)")
    p.add_argument("--solver", default="adam", help="optimizer of the refinement: adam (default), rmsprop, sgd, "
                   "nesterov, or trial (each trial's own)")
    p.add_argument("--force", action="store_true", help="refine trials already refined with these settings again")
    p.add_argument("--threads", type=int, help="TensorFlow threads (default: all cores)")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if (sys.argv[1:] if argv is None else argv)[:1] == ["worker"]:
        # before numpy's or TensorFlow's imports start a thread: every thread inherits the block (see signals)
        from mat_interp_core.signals import block_stop_signals

        block_stop_signals()
    try:
        parser = build_parser()  # its defaults read the settings
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return args.func(args)
    except (_user_errors() + (_DataError,)) as err:
        flags = [_UNIT_FLAGS[f] for f in getattr(err, "fields", ()) if f in _UNIT_FLAGS]
        print(f"error: {err}" + (f" (options: {', '.join(flags)})" if flags else ""), file=sys.stderr)
        return 2
