"""`mat-interp ...` commands: everything the GUI can do, from a terminal."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from mat_interp_core.config import get_settings, mask_url

# Errors a user can cause and fix: printed as one sentence, exit status 2.
_USER_ERRORS: tuple[type[Exception], ...] = ()


def _user_errors() -> tuple[type[Exception], ...]:
    from mat_interp_core.dataset import DataError
    from mat_interp_core.entropy import UnitError
    from mat_interp_core.projects import ProjectError
    from mat_interp_core.space import SpaceError

    return (DataError, ProjectError, SpaceError, UnitError)


def _url(args) -> str:
    return args.database or get_settings().database_url


def _write_csv(frame, out: str) -> None:
    path = Path(out)
    if path.parent and not path.parent.exists():
        raise _DataError(f"cannot write {out}: folder {path.parent} does not exist")
    frame.to_csv(path, index=False)
    print(f"wrote {len(frame)} rows to {path}")


class _DataError(Exception):
    pass


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
    for key in ("epochs", "patience", "min_resource", "seed", "objective", "keep_models"):
        value = getattr(args, key, None)
        if value is not None:
            base[key] = value
    return SearchSpace.from_dict(base)


def cmd_train(args) -> int:
    from mat_interp_core import dataset, projects, storage, workers

    url = _url(args)
    name = dataset.validate_project_name(args.name)
    if args.more is None:
        if not (args.csv and args.x1 and args.x2 and args.y):
            raise dataset.DataError("a new project needs --csv FILE --x1 COL --x2 COL --y COL (or --more N to continue one)")
        space = _space_from_args(args)
        frame = dataset.read_table(args.csv, max_mb=get_settings().max_upload_mb, name=args.csv)
        x2_values = dataset.parse_values(args.x2_values, what="--x2-values") if args.x2_values else None
        data = dataset.validate(frame, args.x1, args.x2, args.y, x2_values=x2_values, drop_invalid=args.drop_invalid)
        if data.n_dropped:
            print(f"dropped {data.n_dropped} rows with missing, infinite or huge values")
        if args.trials < 1:
            raise dataset.DataError(f"--trials must be >= 1; got {args.trials}")
        units = {"x1": args.x1_unit, "x2": args.x2_unit, "y": args.y_unit}
        project = projects.create_project(url, name, data, space=space, n_trials=args.trials, units=units)
        print(f"project {name}: {len(data.frame)} points, {len(data.x2_values)} {data.x2_name} values; "
              f"study stored in {mask_url(url)}")
    else:
        project = projects.add_trials(url, name, args.more)
        print(f"project {name}: continuing to {project.n_trials} finished trials")
    if args.workers < 1:
        raise dataset.DataError(f"--workers must be >= 1; got {args.workers}")
    storage.init_database(url)
    procs = workers.launch_local(url, name, args.workers)
    try:
        ok = _follow(url, name, procs)
    except KeyboardInterrupt:
        print("\nstopping the workers (the running trials end as FAIL)...", file=sys.stderr)
        workers.stop_local(procs)
        p = projects.progress(url, name)
        print(f"stopped: {p['finished']} of {p['target']} trials finished; "
              f"continue with: mat-interp train {name} --more 0", file=sys.stderr)
        return 130
    _print_best(url, name)
    return 0 if ok else 1


def _follow(url: str, name: str, procs) -> bool:
    """Progress bar until the study has its trials or every local worker has exited."""
    from tqdm import tqdm

    from mat_interp_core import projects

    p = projects.progress(url, name)
    bar = tqdm(total=p["target"], initial=min(p["finished"], p["target"]), unit="trial", dynamic_ncols=True,
               file=sys.stdout, disable=None)
    try:
        while True:
            p = projects.progress(url, name)
            bar.total = p["target"]
            bar.n = min(p["finished"], p["target"])
            best = "-" if p["best_value"] is None else f"{p['best_value']:.5f}"
            bar.set_postfix_str(f"pruned {p['pruned']}, failed {p['failed']}, running {p['running']}, best R² {best}")
            bar.refresh()
            alive = [pr for pr in procs if pr.poll() is None]
            if not alive:
                break
            time.sleep(1.0)
    finally:
        bar.close()
    if not p["done"]:
        from mat_interp_core.workers import log_dir

        print(f"the workers stopped before the study had its trials ({p['finished']} of {p['target']}); "
              f"logs in {log_dir()}", file=sys.stderr)
        return False
    return True


def _print_best(url: str, name: str) -> None:
    from mat_interp_core import projects

    p = projects.progress(url, name)
    if p["best_trial"] is None:
        print("no trial completed")
        return
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in p["best_params"].items())
    print(f"best trial {p['best_trial']}: R² = {p['best_value']:.6f} ({params}); "
          f"{p['complete']} complete, {p['pruned']} pruned, {p['failed']} failed in {p['elapsed_s']:.0f} s")


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def cmd_worker(args) -> int:
    from mat_interp_core import workers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import threading

    stop = threading.Event()
    workers.install_signal_handlers(stop)
    url = _url(args)
    print(f"worker {os.getpid()} on {mask_url(url)} serving {args.name or 'any project'}", flush=True)
    n = workers.run_worker(url, args.name, exit_when_idle=args.exit_when_idle, threads=args.threads, stop_event=stop)
    print(f"worker {os.getpid()} ran {n} trials", flush=True)
    return 0


def cmd_status(args) -> int:
    import pandas as pd

    from mat_interp_core import projects

    url = _url(args)
    table = projects.trials_frame(url, args.name)
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_columns", None):
        print(table.drop(columns=["note"]).to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    p = projects.progress(url, args.name)
    print(f"\n{p['finished']} of {p['target']} finished ({p['complete']} complete, {p['pruned']} pruned), "
          f"{p['failed']} failed, {p['running']} running")
    _print_best(url, args.name)
    return 0


def cmd_projects(args) -> int:
    from mat_interp_core import projects

    url = _url(args)
    items = projects.list_projects(url)
    if not items:
        print(f"no projects in {mask_url(url)}")
        return 0
    for p in items:
        prog = projects.progress(url, p.name)
        best = "-" if prog["best_value"] is None else f"{prog['best_value']:.5f}"
        print(f"{p.name:24s} {p.n_rows:7d} points  {prog['finished']:4d}/{p.n_trials:<4d} trials  best R² {best}  "
              f"Y={p.y_name}({p.x1_name}, {p.x2_name})")
    return 0


def cmd_simulate(args) -> int:
    from mat_interp_core import dataset, simulate

    x1 = dataset.parse_axis(args.x1, what="--x1")
    x2 = dataset.parse_axis(args.x2, what="--x2")
    frame = simulate.simulate(_url(args), args.name, x1, x2, k=args.ensemble,
                              max_points=get_settings().max_grid_points)
    _write_csv(frame, args.out)
    return 0


def cmd_fitted(args) -> int:
    from mat_interp_core import simulate

    _write_csv(simulate.fitted(_url(args), args.name, k=args.ensemble), args.out)
    return 0


def cmd_export(args) -> int:
    from mat_interp_core import simulate

    data = simulate.model_bytes(_url(args), args.name)
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes): keras.saving.load_model(...).predict([[x1, x2]]) gives Y in the data's units")
    return 0


def cmd_delete(args) -> int:
    from mat_interp_core import projects

    projects.delete_project(_url(args), args.name)
    print(f"deleted project {args.name}")
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--csv")
    p.add_argument("--x1", help="column of the first scan axis (e.g. temperature)")
    p.add_argument("--x2", help="column of the second scan axis (e.g. field)")
    p.add_argument("--y", help="column of the measured quantity")
    p.add_argument("--x2-values", help="train on these X2 values only, e.g. 100,1000,50000")
    p.add_argument("--x1-unit", default="")
    p.add_argument("--x2-unit", default="")
    p.add_argument("--y-unit", default="")
    p.add_argument("--drop-invalid", action="store_true", help="drop rows with missing or infinite values")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--more", type=int, help="continue an existing project with N more trials")
    p.add_argument("--workers", type=int, default=get_settings().default_workers)
    p.add_argument("--solver", help="adam, rmsprop, sgd, nesterov, or a comma list (default: all four)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--min-resource", type=int, dest="min_resource")
    p.add_argument("--layers", help="MIN:MAX (default 2:10)")
    p.add_argument("--nodes", help="MIN:MAX (default 50:200)")
    p.add_argument("--lr", help="MIN:MAX (default 5e-4:5e-3)")
    p.add_argument("--objective", choices=("train_r2", "holdout"))
    p.add_argument("--keep-models", type=int, dest="keep_models")
    p.add_argument("--seed", type=int)

    p = add("worker", cmd_worker, "run one worker process against a database", project_optional=True)
    p.add_argument("--exit-when-idle", action="store_true", help="exit when no project has trials to run")
    p.add_argument("--threads", type=int, help="TensorFlow threads (default: cores / workers)")

    add("status", cmd_status, "print the trial table and the best trial")
    add("projects", cmd_projects, "list the projects", project=False)
    add("delete", cmd_delete, "delete a project: its study, data and models")

    p = add("simulate", cmd_simulate, "predict the fine grid with the best model")
    p.add_argument("--x1", required=True, help="START:STOP:STEP or v1,v2,...")
    p.add_argument("--x2", required=True, help="START:STOP:STEP or v1,v2,...")
    p.add_argument("--ensemble", type=int, default=1, help="average the best K models and add their spread")
    p.add_argument("--out", required=True)

    p = add("fitted", cmd_fitted, "the model's values at the training points")
    p.add_argument("--ensemble", type=int, default=1)
    p.add_argument("--out", required=True)

    p = add("export-model", cmd_export, "write the best model as a .keras file (predicts Y in the data's units)")
    p.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return args.func(args)
    except (_user_errors() + (_DataError,)) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
