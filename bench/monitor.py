"""The Monitor page's server work per refresh on a finished 200-trial study (issue 11: measure before and after).

    python bench/monitor.py [--trials 200] [--repeats 10] [--tree PATH]
    python bench/monitor.py --tree /tmp/mi-before --tree . --rounds 3     # both, alternating, with ratios
    python bench/monitor.py --mariadb --tree /tmp/mi-before --tree .      # on a real MariaDB (issue 12's target)

Builds a throw-away SQLite database holding one project with a realistic finished study: the demo data set
(800 points, 8 fields), `--trials` finished trials added with Optuna's API (about 45 % COMPLETE, the rest
PRUNED at the successive-halving rungs, params layers/nodes/lr/batch/solver, the user attributes a worker writes),
per-epoch learning curves in `mi_curves` (100–500 epochs a complete trial, the rung a pruned one stopped at), the
10 kept models (placeholder blobs: the Monitor reads their R² only), the refinement's attributes on them and the
|ΔS_M| band's folds recorded, so the page shows "Finished" with every step after the search done. `--pending`
leaves the steps after the search undone (the page then offers its "Run the steps after the search now" button).

The page is driven with Streamlit's AppTest (`app/streamlit_app.py`, then `views/monitor.py`, the project
picked), one warm-up run and then `--repeats` timed runs. One AppTest run is one full rerun of the page; in the
browser a refresh reruns the `live()` fragment only, which is where all the page's database work is (the rest
is the title, the caption and the sidebar). Each run is timed (wall and this process's CPU time, the script
runs in a thread of this process) and its SQL statements are counted with a `before_cursor_execute` listener on
both engines the app uses: ours (`storage.get_engine(url)`) and Optuna's RDBStorage's (`storage.optuna_storage(url)
.engine`). Connection checkouts are counted too: on MariaDB each is one more round trip (`pool_pre_ping`).
Also printed: the time of each library call, figure and element the page makes (wall and the script thread's CPU),
the most repeated statements, and, from one more untimed run, each statement's call site (page line → library
function). The CPU times are the steadier figures on a busy machine.

`--tree PATH` measures another checkout (PATH first on sys.path, PATH/app/streamlit_app.py): make the old one with
`git worktree add /tmp/mi-before 22dfa22`. Several `--tree` run one child process per tree and round, alternating
(`--rounds`), and print one table with the ratios to the first tree; run it under `nice` on a busy machine.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "bench-monitor"
RUNGS = (50, 100, 200, 400)  # successive halving: min_resource 50, reduction factor 2 (the defaults)


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=200, help="finished trials in the study (default 200)")
    ap.add_argument("--repeats", type=int, default=10, help="timed page runs per tree and round (default 10)")
    ap.add_argument("--tree", action="append", default=[],
                    help="checkout to measure (default: this one); repeat to compare, alternating")
    ap.add_argument("--rounds", type=int, default=None,
                    help="with several trees: alternating rounds of --repeats runs each (default 2)")
    ap.add_argument("--pending", action="store_true", help="leave the steps after the search undone")
    ap.add_argument("--mariadb", action="store_true",
                    help="on a real MariaDB on 127.0.0.1 (tests/mariadb.py starts Debian's mariadbd; a fresh database "
                         "per tree and round) instead of a SQLite file")
    ap.add_argument("--database", help=argparse.SUPPRESS)  # a child's empty database (from the parent's --mariadb)
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic study (default 0)")
    ap.add_argument("--top", type=int, default=8, help="most repeated SQL statements to list (default 8)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a child's answer to its parent
    return ap.parse_args()


# ------------------------------------------------------------------ the study


def _trial_specs(n: int, seed: int, batches: tuple[int, ...], solvers: tuple[str, ...]) -> list[dict]:
    """What `n` finished trials of the default search look like: params, state, epochs, R², timings."""
    import numpy as np

    rng = np.random.default_rng(seed)
    specs = []
    clock = time.time() - 3600.0 * 3
    for number in range(n):
        complete = number < 3 or rng.random() < 0.45
        if complete:
            epochs = int(rng.integers(100, 501))  # early stopping (patience 20) anywhere up to the budget
            value = float(1.0 - 10 ** rng.uniform(-5.5, -2.0))
        else:
            epochs = int(rng.choice(RUNGS, p=(0.4, 0.3, 0.2, 0.1)))  # the rung it was stopped at
            value = None
        final_loss = 10 ** rng.uniform(-5.5, -2.0) if complete else 10 ** rng.uniform(-4.0, -1.5)
        duration = epochs * float(rng.uniform(0.05, 0.3))
        specs.append({
            "number": number,
            "complete": complete,
            "epochs": epochs,
            "value": value,
            "final_loss": final_loss,
            "start": clock,
            "end": clock + duration,
            "params": {"layers": int(rng.integers(2, 11)), "nodes": int(rng.integers(50, 201)),
                       "lr": float(10 ** rng.uniform(np.log10(5e-4), np.log10(5e-3))),
                       "batch": int(rng.choice(batches)), "solver": str(rng.choice(solvers))},
        })
        clock += duration / 2  # two workers
    return specs


def _curve_rows(project_id: int, spec: dict, rng) -> list[dict]:
    import numpy as np

    epochs = np.arange(1, spec["epochs"] + 1)
    start = 10 ** rng.uniform(-0.5, 0.0)
    loss = start * (spec["final_loss"] / start) ** (np.log1p(epochs) / np.log1p(spec["epochs"]))
    loss *= np.exp(rng.normal(0.0, 0.05, size=epochs.size))
    return [{"project_id": project_id, "trial_number": spec["number"], "epoch": int(e), "loss": float(v),
             "r2": float(1.0 - v)} for e, v in zip(epochs, loss)]


def build_database(url: str, n_trials: int, seed: int, pending: bool) -> dict:
    """Create the project and its finished study in the (empty) database at `url`; returns a few facts."""
    import datetime as dt

    import numpy as np
    import optuna
    import sqlalchemy as sa
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from mat_interp_core import dataset, projects, refine, storage, synthetic, uncertainty
    from mat_interp_core.space import SearchSpace, batch_choices

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = dataset.validate(synthetic.demo_frame(), "T (K)", "H (Oe)", "moment (emu)")
    space = SearchSpace(seed=seed)
    units = {"x1": "K", "x2": "Oe", "y": "emu", "magnetisation": True, "mass_mg": synthetic.DEMO_MASS_MG,
             "m_unit": "emu", "h_unit": "Oe", "molar_mass_g": None}
    projects.create_project(url, PROJECT, data, space=space, n_trials=n_trials, units=units)
    engine = storage.get_engine(url)
    with engine.connect() as conn:
        pid = conn.execute(sa.select(storage.projects.c.id).where(storage.projects.c.name == PROJECT)).scalar_one()

    batches = tuple(space.batch_sizes or batch_choices(len(data.frame)))
    specs = _trial_specs(n_trials, seed, batches, tuple(space.solvers))
    complete = sorted((s for s in specs if s["complete"]), key=lambda s: -s["value"])
    kept = complete[: space.keep_models]
    _, _, refine_epochs = refine.plan(space)
    settings = refine.refine_settings(refine_epochs)
    rng = np.random.default_rng(seed + 1)
    for s in kept:
        s["refined_r2"] = float(1.0 - (1.0 - s["value"]) * rng.uniform(0.2, 0.6))

    distributions = {"layers": IntDistribution(*space.layers), "nodes": IntDistribution(*space.nodes),
                     "lr": FloatDistribution(*space.lr, log=True), "batch": CategoricalDistribution(batches),
                     "solver": CategoricalDistribution(tuple(space.solvers))}
    study = optuna.load_study(study_name=PROJECT, storage=storage.optuna_storage(url))
    trials = []
    for s in specs:
        attrs = {"worker": f"bench-host:{4000 + s['number'] % 2}", "x2_transform": space.x2_transforms[0],
                 "train_s": round(s["end"] - s["start"], 3), "curve_write_s": round(0.002 * s["epochs"], 4),
                 "epochs": s["epochs"]}
        if s["complete"]:
            attrs["best_epoch"] = max(1, s["epochs"] - 20)
        if "refined_r2" in s and not pending:
            attrs.update(refined=settings, refined_r2=s["refined_r2"], refined_s=float(rng.uniform(20, 60)),
                         refined_epochs=refine_epochs, refined_kept=True)
        loss_at = {r: s["final_loss"] * (s["epochs"] / r) ** 0.5 for r in RUNGS if r <= s["epochs"]}
        trials.append(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE if s["complete"] else optuna.trial.TrialState.PRUNED,
            value=s["value"], params=s["params"], distributions=distributions, user_attrs=attrs,
            intermediate_values={r: 1.0 - v for r, v in loss_at.items()}))
        # create_trial stamps both datetimes "now": give the trials their own, spread over three hours
        trials[-1].datetime_start = dt.datetime.fromtimestamp(s["start"])
        trials[-1].datetime_complete = dt.datetime.fromtimestamp(s["end"])
    study.add_trials(trials)

    curve_rng = np.random.default_rng(seed + 2)
    rows = [row for s in specs for row in _curve_rows(pid, s, curve_rng)]
    blob = bytes(64 * 1024)  # the Monitor reads a stored model's R², never its .keras bytes
    with engine.begin() as conn:
        conn.execute(storage.curves.insert(), rows)
        conn.execute(storage.models.insert(), [
            {"project_id": pid, "trial_number": s["number"], "y_mean": 0.0, "y_std": 1.0, "keras": blob,
             "value": s["value"] if pending else s["refined_r2"]} for s in kept])

    if not pending:  # the |ΔS_M| band's folds, recorded for the current best model as calibrate_project does
        try:
            fold_plan = uncertainty._fold_plan(projects.open_project(url, PROJECT))
        except AttributeError:  # the code before the project handle: (url, name)
            fold_plan = uncertainty._fold_plan(url, PROJECT)
        fold_settings = fold_plan[-1]
        with engine.begin() as conn:
            conn.execute(storage.models.insert(), [
                {"project_id": pid, "trial_number": -1 - k, "value": 0.999, "y_mean": 0.0, "y_std": 1.0,
                 "keras": blob} for k in range(len(fold_settings["folds"]))])
        optuna.load_study(study_name=PROJECT, storage=storage.optuna_storage(url)).set_user_attr(
            "calibration", fold_settings)
    return {"trials": len(specs), "complete": len(complete), "pruned": len(specs) - len(complete),
            "curve_rows": len(rows), "kept": len(kept)}


# ------------------------------------------------------------------ counting statements


class Tally:
    """SQL statements and connection checkouts on the engines the app uses, by engine and by statement."""

    def __init__(self) -> None:
        self.statements = collections.Counter()  # engine label -> count
        self.checkouts = collections.Counter()
        self.texts = collections.Counter()  # (engine label, normalised SQL) -> count
        self.sites = collections.Counter()  # (page line -> library function, what) -> count, with `tree` set
        self.on = False
        self.tree: str | None = None  # set: attribute each statement to its caller (an untimed run)

    def watch(self, engine, label: str) -> None:
        import sqlalchemy as sa

        def before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            if self.on:
                self.statements[label] += 1
                self.texts[(label, _normalise(statement))] += 1
                if self.tree:
                    self.sites[(_call_site(self.tree), _what(statement))] += 1

        def checkout(dbapi_conn, record, proxy):  # noqa: ANN001
            if self.on:
                self.checkouts[label] += 1

        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine.pool, "checkout", checkout)


def _call_site(tree: str) -> str:
    """'views/monitor.py:LINE function → module.function': the page line and the first library function under it."""
    page = lib = None
    frame = sys._getframe(2)
    while frame is not None:
        file = frame.f_code.co_filename
        if file.startswith(tree):
            rel = os.path.relpath(file, tree)
            if rel.startswith("app"):
                page = page or f"{rel.removeprefix('app/')}:{frame.f_lineno} {frame.f_code.co_name}"
            elif rel.startswith("mat_interp_core") and not rel.endswith("storage.py") and page is None:
                lib = f"{Path(rel).stem}.{frame.f_code.co_name}"  # ends as the outermost library frame
        frame = frame.f_back
    return f"{page or '?'} → {lib or '(app)'}"


def _what(sql: str) -> str:
    """A short name for a statement: the trial list (Optuna's 'SELECT trials...'), a table read, or the verb."""
    sql = re.sub(r"\s+", " ", sql).strip()
    if sql.startswith("SELECT trials.trial_id"):
        return "trial list"
    table = re.search(r"\bFROM (\w+)", sql)
    return f"{sql.split(' ', 1)[0].lower()} {table.group(1) if table else ''}".strip()


class Sections:
    """Wall and CPU time (the script thread's) of what the page calls: each library reader, the figure, the
    chart and table elements. Wrapped as module attributes, so only calls made from the app's files count
    (a library function calling another is inside its caller's section)."""

    NAMES = {"projects": ("open_project", "get_project", "list_projects", "progress", "trials_frame", "curves_frame"),
             "refine": ("refine_progress",), "uncertainty": ("calibration_status",),
             "validation": ("validation_status",), "common": ("fig_learning_curves", "training_data"),
             "figures": ("fig_learning_curves",),  # app/figures.py since the split of app/common.py
             "streamlit": ("plotly_chart", "dataframe")}

    def __init__(self, tree: Path) -> None:
        self.app = str(tree / "app") + os.sep
        self.wall = collections.Counter()
        self.cpu = collections.Counter()
        self.runs: list[tuple[dict, dict]] = []

    def install(self) -> None:
        for module_name, names in self.NAMES.items():
            module = sys.modules.get(module_name) or sys.modules.get(f"mat_interp_core.{module_name}")
            for name in names:
                func = getattr(module, name, None) if module is not None else None
                if func is not None and not hasattr(func, "_bench_wrapped"):
                    setattr(module, name, self._wrap(func, name if module_name != "streamlit" else f"st.{name}"))

    def _wrap(self, func, label: str):
        def wrapper(*args, **kwargs):
            if not sys._getframe(1).f_code.co_filename.startswith(self.app):
                return func(*args, **kwargs)
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                self.wall[label] += time.perf_counter() - w0
                self.cpu[label] += time.thread_time() - c0

        wrapper._bench_wrapped = True
        return wrapper

    def start(self) -> None:
        self.wall.clear(), self.cpu.clear()

    def stop(self) -> None:
        self.runs.append((dict(self.wall), dict(self.cpu)))


def _normalise(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql).strip()
    return re.sub(r"IN \((?:\?|%s|__\[POSTCOMPILE_\w+\])(?:, ?(?:\?|%s))*\)", "IN (…)", sql)


# ------------------------------------------------------------------ one tree, in this process


def measure(tree: Path, workdir: Path, args: argparse.Namespace) -> dict:
    tree = tree.resolve()
    url = args.database or f"sqlite:///{workdir / 'bench.db'}"
    os.environ.update(MAT_INTERP_DATABASE_URL=url, MAT_INTERP_HOME=str(workdir / "home"), TF_CPP_MIN_LOG_LEVEL="3")
    os.environ.pop("MAT_INTERP_WORKERS", None)
    sys.path.insert(0, str(tree))
    import mat_interp_core
    from mat_interp_core import storage

    if Path(mat_interp_core.__file__).resolve().parent != tree / "mat_interp_core":
        raise SystemExit(f"mat_interp_core came from {mat_interp_core.__file__}, not {tree}")
    from streamlit.testing.v1 import AppTest

    t0 = time.perf_counter()
    facts = build_database(url, args.trials, args.seed, args.pending)
    facts["build_s"] = time.perf_counter() - t0
    facts["database"] = "MariaDB" if url.startswith("mysql") else "SQLite"

    tally = Tally()
    tally.watch(storage.get_engine(url), "ours")
    tally.watch(storage.optuna_storage(url).engine, "optuna")

    at = AppTest.from_file(str(tree / "app" / "streamlit_app.py"), default_timeout=300).run()
    at.session_state["project"] = PROJECT
    at.switch_page("views/monitor.py").run()  # warm-up: imports, caches, first connections
    _check(at, args)
    sections = Sections(tree)
    sections.install()
    walls, cpus, counts, checkouts = [], [], [], []
    texts = collections.Counter()
    for _ in range(args.repeats):
        tally.statements.clear(), tally.checkouts.clear(), tally.texts.clear()
        tally.on = True
        sections.start()
        w0, c0 = time.perf_counter(), time.process_time()
        at.run()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        sections.stop()
        tally.on = False
        if at.exception:
            raise SystemExit(f"the Monitor page failed in {tree}: {[e.value for e in at.exception]}")
        counts.append(dict(tally.statements))
        checkouts.append(sum(tally.checkouts.values()))
        texts.update(tally.texts)
    _check(at, args)
    tally.tree, tally.on = str(tree) + os.sep, True  # one more run, untimed: where each statement comes from
    at.run()
    tally.on = False
    sites = collections.defaultdict(collections.Counter)
    for (site, what), n in tally.sites.items():
        sites[site][what] += n
    return {"tree": str(tree), "commit": _describe(tree), "walls": walls, "cpus": cpus, "counts": counts,
            "checkouts": checkouts, "texts": [[k[0], k[1], v] for k, v in texts.most_common()],
            "repeats": args.repeats, "facts": facts, "sections": sections.runs,
            "sites": sorted(([site, dict(c)] for site, c in sites.items()), key=lambda x: -sum(x[1].values()))}


def _check(at, args: argparse.Namespace) -> None:
    """The page shows the study, not an error: the timing is of the real work."""
    if at.exception:
        raise SystemExit(f"the Monitor page failed: {[e.value for e in at.exception]}")
    bars = [b for b in at.get("progress") if str(b.text).startswith(f"{args.trials} / {args.trials} trials finished")]
    frames = list(at.dataframe)
    charts = list(at.get("plotly_chart"))
    problems = [str(e.value) for e in [*at.error, *at.warning]]
    if not bars or not frames or len(frames[0].value) != args.trials or not charts or problems:
        raise SystemExit(f"the Monitor page does not show the study: progress {[b.text for b in at.get('progress')]}, "
                         f"{len(frames)} tables, {len(charts)} charts, errors/warnings {problems}")


def _describe(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


# ------------------------------------------------------------------ several trees: child processes, alternating


def compare(trees: list[Path], args: argparse.Namespace, server=None) -> list[dict]:
    """Each tree in a child process, alternating; `server` (a tests/mariadb.py MariaDBServer): a fresh database
    on it for each child."""
    rounds = args.rounds or (2 if len(trees) > 1 else 1)
    merged: dict[str, dict] = {}
    for r in range(rounds):
        for k, tree in enumerate(trees if r % 2 == 0 else trees[::-1]):  # A B, B A, A B, ...
            cmd = [sys.executable, __file__, "--tree", str(tree), "--json", "--trials", str(args.trials),
                   "--repeats", str(args.repeats), "--seed", str(args.seed)] + (["--pending"] if args.pending else [])
            if server is not None:
                cmd += ["--database", server.new_database(f"monitor_{r}_{k}")]
            print(f"round {r + 1}/{rounds}: {tree}", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{tree}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            if str(tree) not in merged:
                merged[str(tree)] = res
            else:
                m = merged[str(tree)]
                for key in ("walls", "cpus", "counts", "checkouts", "sections"):
                    m[key] += res[key]
                text = collections.Counter({(a, b): c for a, b, c in m["texts"]})
                text.update({(a, b): c for a, b, c in res["texts"]})
                m["texts"] = [[k[0], k[1], v] for k, v in text.most_common()]
                m["repeats"] += res["repeats"]
    return [merged[str(t)] for t in trees]


# ------------------------------------------------------------------ report


def _row(res: dict) -> dict:
    per_run = [sum(c.values()) for c in res["counts"]]
    ours = [c.get("ours", 0) for c in res["counts"]]
    optuna = [c.get("optuna", 0) for c in res["counts"]]
    return {"median": statistics.median(res["walls"]), "worst": max(res["walls"]),
            "cpu": statistics.median(res["cpus"]), "sql": statistics.median(per_run),
            "sql_range": (min(per_run), max(per_run)), "ours": statistics.median(ours),
            "optuna": statistics.median(optuna), "checkouts": statistics.median(res["checkouts"])}


def report(results: list[dict], args: argparse.Namespace) -> None:
    facts = results[0]["facts"]
    state = "steps after the search pending" if args.pending else "finished, every step after the search done"
    print(f"Monitor refresh on {facts.get('database', 'SQLite')}: {facts['trials']} trials ({facts['complete']} complete, {facts['pruned']} pruned), "
          f"{facts['curve_rows']:,} curve rows, {facts['kept']} kept models; {state}; "
          f"{sum(r['repeats'] for r in results) // len(results)} timed AppTest runs per tree")
    rows = [(r, _row(r)) for r in results]
    base = rows[0][1]
    head = f"{'tree':<28} {'median s':>9} {'worst s':>8} {'CPU s':>7} {'SQL/refresh':>12} {'(ours+optuna)':>14} " \
           f"{'checkouts':>9}"
    if len(rows) > 1:
        head += f" {'time ratio':>10} {'CPU ratio':>9} {'SQL ratio':>9}"
    print(head)
    for res, row in rows:
        label = f"{Path(res['tree']).name or res['tree']} ({res['commit']})"
        spread = "" if row["sql_range"][0] == row["sql_range"][1] else "~"  # the count varied between runs
        line = (f"{label:<28} {row['median']:>9.3f} {row['worst']:>8.3f} {row['cpu']:>7.3f} "
                f"{spread + format(row['sql'], 'g'):>12} {format(row['ours'], 'g') + '+' + format(row['optuna'], 'g'):>14} "
                f"{row['checkouts']:>9g}")
        if len(rows) > 1:
            line += (f" {row['median'] / base['median']:>10.2f} {row['cpu'] / base['cpu']:>9.2f}"
                     f" {row['sql'] / max(1, base['sql']):>9.2f}")
        print(line)
    for res, row in rows:
        low, high = row["sql_range"]
        if low != high:
            print(f"~ {Path(res['tree']).name}: {low} to {high} statements per refresh "
                  f"({sum(sum(c.values()) != row['sql'] for c in res['counts'])} of {len(res['counts'])} runs off "
                  "the median)")
    labels = list(dict.fromkeys(k for res in results for wall, _ in res["sections"] for k in wall))
    print("\nwhere a refresh's time goes, median ms per refresh (wall / CPU of the script thread):")
    print(f"  {'':<22}" + "".join(f" {Path(res['tree']).name:>18}" for res in results))
    for label in labels:
        cells = []
        for res in results:
            wall = statistics.median(w.get(label, 0.0) for w, _ in res["sections"]) * 1e3
            cpu = statistics.median(c.get(label, 0.0) for _, c in res["sections"]) * 1e3
            cells.append(f"{wall:>8.0f} / {cpu:>7.0f}")
        print(f"  {label:<22}" + "".join(f" {c:>18}" for c in cells))
    for res in results:
        print(f"\nmost repeated statements per refresh, {Path(res['tree']).name} ({res['commit']}):")
        for engine, sql, count in res["texts"][: args.top]:
            print(f"  {count / res['repeats']:>5.3g} x [{engine}] {sql[:150]}")
        print(f"statements of one refresh by call site (page line → library function: what), "
              f"{Path(res['tree']).name}:")
        for site, whats in res["sites"]:
            print(f"  {sum(whats.values()):>3} {site}: "
                  + ", ".join(f"{w} {n}" for w, n in sorted(whats.items(), key=lambda x: -x[1])))


def main() -> None:
    args = _parse()
    trees = [Path(t).resolve() for t in args.tree] or [ROOT]
    if args.mariadb:  # a local server for the children, each on a fresh database
        sys.path.insert(0, str(ROOT / "tests"))
        from mariadb import MariaDBServer, mariadbd_path

        if mariadbd_path() is None:
            raise SystemExit("--mariadb: mariadbd is not installed (scripts/test.sh installs Debian's mariadb-server)")
        server = MariaDBServer().start()
        try:
            report(compare(trees, args, server), args)
        finally:
            server.cleanup()
        return
    if len(trees) > 1 or (args.rounds or 1) > 1:
        report(compare(trees, args), args)
        return
    workdir = Path(tempfile.mkdtemp(prefix="mi-bench-monitor-"))
    try:
        res = measure(trees[0], workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(res))
    else:
        report([res], args)


if __name__ == "__main__":
    main()
