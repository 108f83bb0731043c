"""Speed of the default search: this project's workers against the published procedure.

    python bench/search_speed.py [--csv ../shared/data/traindata_Section3_1.csv] [--trials 30] [--workers 2]

Both studies get the same hyper-parameter sets (``study.enqueue_trial``), the
same pruner (successive halving, min resource 50, factor 2) and the same
early stopping (training loss, patience 20, best weights restored), each on its
own SQLite file, one after the other on this machine:

* ours: ``mat-interp`` workers (one epoch = one tf.function call, 1 TF thread
  per worker, curves batched into the database, Optuna told only at rungs);
* reference: plain ``model.fit`` with a ``trial.report`` every epoch and the
  default TensorFlow threading, as in the published tool.

Prints wall time, trials complete/pruned, best R², peak resident memory per
worker, the share of training time spent writing curves, and the ratio.

    python bench/search_speed.py --default-path            # issue 12: Section 3.1, target >= 2.7x, <= 90 s
    python bench/search_speed.py --default-path --skip-reference --csv ../shared/data/traindata_Section3_4.csv
    python bench/search_speed.py --adam 8                 # Keras's Adam against network.FusedAdam, same update

With ``--default-path`` "ours" is the product's default path instead: ``mat-interp
train`` with its defaults (a TPE search of --trials trials, then every step
after it — the refinement shared by the workers, the |ΔS_M| band's folds for
magnetisation data: Section 3.1 gets its units by default, see --units),
timed to the command's exit, with the search's share read from the database,
worker restarts counted in their logs, peak RSS/PSS of every process and the
training R² of the ensemble it leaves (best and median of the stored models).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mat_interp_core import dataset, models, projects, storage, workers  # noqa: E402
from mat_interp_core.space import SearchSpace  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "traindata_Section3_1.csv"


def sample_configs(space: SearchSpace, n_points: int, n: int, seed: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial, n_points))
        study.tell(trial, 0.0)
    return out


def watch(procs: list[subprocess.Popen]) -> tuple[float, list[float], list[float]]:
    """Wait for the processes to end; return wall seconds and peak RSS and PSS (MB) per process.

    RSS counts TensorFlow's shared-library pages (~280 MB) in every worker; PSS
    divides shared pages among the processes that map them.
    """
    start = time.perf_counter()
    rss, pss = [0.0] * len(procs), [0.0] * len(procs)
    handles = [psutil.Process(p.pid) for p in procs]
    while any(p.poll() is None for p in procs):
        for i, h in enumerate(handles):
            try:
                m = h.memory_full_info()
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            rss[i], pss[i] = max(rss[i], m.rss / 2**20), max(pss[i], m.pss / 2**20)
        time.sleep(0.25)
    for p in procs:
        p.wait()
    return time.perf_counter() - start, rss, pss


def summary(study) -> dict:
    from optuna.trial import TrialState

    ts = study.get_trials(deepcopy=False)
    complete = [t for t in ts if t.state == TrialState.COMPLETE]
    return {
        "complete": len(complete),
        "pruned": sum(t.state == TrialState.PRUNED for t in ts),
        "failed": sum(t.state == TrialState.FAIL for t in ts),
        "best_r2": max((t.value for t in complete), default=float("nan")),
        "epochs": sum(int(t.user_attrs.get("epochs") or (t.last_step or 0)) for t in ts),
        "write_s": sum(float(t.user_attrs.get("curve_write_s", 0.0)) for t in ts),
        "train_s": sum(float(t.user_attrs.get("train_s", 0.0)) for t in ts),
    }


def run_ours(csv: Path, configs: list[dict], n_workers: int, tmp: Path) -> dict:
    url = f"sqlite:///{tmp / 'ours.db'}"
    frame = dataset.read_table(csv)
    x1, x2, y = frame.columns[:3]
    data = dataset.validate(frame, x1, x2, y)
    projects.create_project(url, "bench", data, space=SearchSpace(), n_trials=len(configs))
    study = projects.open_project(url, "bench").study()
    for c in configs:
        study.enqueue_trial(c)
    procs = workers.launch_local(projects.open_project(url, "bench"), n_workers)
    wall, rss, pss = watch(procs)
    return {"wall_s": wall, "peak_rss_mb": rss, "peak_pss_mb": pss, **summary(projects.open_project(url, "bench").study())}


SECTION_3_1_UNITS = "K,Oe,emu,0.61"  # ErCo2 (bench/fidelity.py): magnetisation, so its default path has the band's folds


def run_default_path(csv: Path, n_trials: int, n_workers: int, tmp: Path, units: str = "") -> dict:
    """The product's default path: `mat-interp train` with its defaults (search, then every step after it, on
    the workers), timed from the command's start to its exit; the search's end is read from the database.
    `units` "X1,X2,Y[,MASS_MG]" go to train as --x1-unit, --x2-unit, --y-unit, --mass-mg (magnetisation data
    gets the |ΔS_M| band's folds; data without units does not)."""
    url = f"sqlite:///{tmp / 'default.db'}"
    x1, x2, y = pd.read_csv(csv, nrows=1).columns[:3]
    cmd = [sys.executable, "-m", "mat_interp_core", "train", "bench", "--csv", str(csv), "--x1", x1, "--x2", x2,
           "--y", y, "--trials", str(n_trials), "--workers", str(n_workers), "--database", url]
    for flag, value in zip(("--x1-unit", "--x2-unit", "--y-unit", "--mass-mg"), units.split(",") if units else []):
        cmd += [flag, value]
    env = dict(os.environ, MAT_INTERP_HOME=str(tmp / "home"))
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    search_s, rss, pss, restarts = None, {}, {}, 0
    handle = psutil.Process(proc.pid)
    while proc.poll() is None:
        for child in handle.children(recursive=True):
            try:
                m = child.memory_full_info()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            rss[child.pid] = max(rss.get(child.pid, 0.0), m.rss / 2**20)
            pss[child.pid] = max(pss.get(child.pid, 0.0), m.pss / 2**20)
        if search_s is None:
            try:
                if projects.progress(projects.open_project(url, "bench"))["done"]:
                    search_s = time.perf_counter() - start
            except Exception:  # noqa: BLE001 - not created yet
                pass
        time.sleep(0.5)
    out = proc.communicate()[0]
    total = time.perf_counter() - start
    logs = list((tmp / "home" / "logs").glob("bench-worker-*.log"))
    restarts = sum(f.read_text(errors="replace").count("restarting to release memory") for f in logs)
    if proc.returncode != 0:
        sys.exit(f"mat-interp train failed ({proc.returncode}):\n{out}")
    storage.dispose_all()
    project = projects.open_project(url, "bench")
    kept = sorted(models.values(project).values(), reverse=True)
    return {"wall_s": total, "search_s": search_s or total, "after_s": total - (search_s or total),
            "ensemble_r2": (kept[0], float(np.median(kept)), len(kept)) if kept else None,
            "peak_rss_mb": list(rss.values()), "peak_pss_mb": list(pss.values()), "restarts": restarts,
            "tf_lines": sum("tensorflow" in line.lower() or "onednn" in line.lower() for line in out.splitlines()),
            **summary(project.study())}


def run_reference(csv: Path, configs: list[dict], n_workers: int, tmp: Path) -> dict:
    url = f"sqlite:///{tmp / 'reference.db'}"
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=50, reduction_factor=2)
    study = optuna.create_study(study_name="reference", storage=url, direction="maximize", pruner=pruner)
    for c in configs:
        study.enqueue_trial(c)
    cmd = [sys.executable, __file__, "--reference-worker", url, "--csv", str(csv)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n_workers)]
    wall, rss, pss = watch(procs)
    return {"wall_s": wall, "peak_rss_mb": rss, "peak_pss_mb": pss,
            **summary(optuna.load_study(study_name="reference", storage=url))}


def reference_worker(url: str, csv: Path) -> None:
    """The published procedure: plain model.fit, a report every epoch, default threading."""
    import keras

    from mat_interp_core import network

    frame = pd.read_csv(csv)
    x = frame.iloc[:, :2].to_numpy("float32")
    y = frame.iloc[:, 2].to_numpy("float64")
    ys = ((y - y.mean()) / y.std()).astype("float32")
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=50, reduction_factor=2)
    study = optuna.load_study(study_name="reference", storage=url, pruner=pruner)

    class Report(keras.callbacks.Callback):
        def __init__(self, trial):
            super().__init__()
            self.trial = trial

        def on_epoch_end(self, epoch, logs=None):
            self.trial.report(1.0 - float(logs["loss"]), step=epoch + 1)
            if self.trial.should_prune():
                raise optuna.TrialPruned()

    def objective(trial):
        p = SearchSpace().suggest(trial, len(x))  # the enqueued configuration
        model = network.build_model(p["layers"], p["nodes"], x)
        steps = math.ceil(len(x) / p["batch"])
        model.compile(optimizer=network.make_optimizer(p["solver"], p["lr"], steps, 500), loss="mse")
        stop = keras.callbacks.EarlyStopping(monitor="loss", patience=20, restore_best_weights=True)
        t0 = time.perf_counter()
        hist = model.fit(x, ys, batch_size=p["batch"], epochs=500, verbose=0, callbacks=[stop, Report(trial)])
        trial.set_user_attr("epochs", len(hist.history["loss"]))
        trial.set_user_attr("train_s", time.perf_counter() - t0)
        pred = model.predict(x, verbose=0)[:, 0]
        return 1.0 - float(np.mean((pred - ys) ** 2))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while True:
        waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        if not waiting:
            break
        study.optimize(objective, n_trials=1, catch=(Exception,))


def adam_ratio(csv: Path, n_configs: int, epochs: int, seed: int) -> None:
    """Keras's Adam against network.FusedAdam (the same update, one fused kernel per variable): each of
    `n_configs` configurations sampled from the default space trains `epochs` epochs both ways from the same
    weights, in this process on one thread, the order alternating; prints the times and their ratio."""
    import keras

    from mat_interp_core import network

    network.configure_threads(1)
    frame = pd.read_csv(csv)
    x = frame.iloc[:, :2].to_numpy(dtype="float32")
    y = frame.iloc[:, 2].to_numpy(dtype="float64")
    y = ((y - y.mean()) / y.std()).astype("float32")
    ratios = []
    print(f"Adam on {csv.name} ({len(x)} points), {epochs} epochs a configuration, 1 thread")
    print(f"{'layers':>6s} {'nodes':>5s} {'batch':>5s} {'keras s':>8s} {'fused s':>8s} {'ratio':>6s}")
    for k, p in enumerate(sample_configs(SearchSpace(), len(x), n_configs, seed)):
        seconds = {}
        for fused in ((False, True) if k % 2 == 0 else (True, False)):
            keras.utils.set_random_seed(seed + k)
            model = network.build_model(p["layers"], p["nodes"], x)
            started = time.perf_counter()
            network.fit_many([model], x, y, solver="adam", lr=p["lr"], batch_size=p["batch"], epochs=epochs,
                             patience=epochs, seed=seed + k, fused=fused)
            seconds[fused] = time.perf_counter() - started
        ratios.append(seconds[True] / seconds[False])
        print(f"{p['layers']:6d} {p['nodes']:5d} {p['batch']:5d} {seconds[False]:8.2f} {seconds[True]:8.2f} "
              f"{ratios[-1]:6.2f}", flush=True)
    print(f"fused / keras time: median {np.median(ratios):.2f}, worst {max(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--default-path", action="store_true",
                        help="time the product's default path (`mat-interp train` defaults: search and every step "
                             "after it) instead of the search on enqueued configurations")
    parser.add_argument("--units", help="with --default-path: X1,X2,Y units and the mass in mg given to train "
                        f"(default: {SECTION_3_1_UNITS} for the Section 3.1 file, none for other files)")
    parser.add_argument("--adam", type=int, metavar="N",
                        help="only time Keras's Adam against network.FusedAdam on N sampled configurations")
    parser.add_argument("--epochs", type=int, default=100, help="with --adam: epochs a configuration")
    parser.add_argument("--reference-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_worker:
        reference_worker(args.reference_worker, args.csv)
        return
    if not args.csv.exists():
        sys.exit(f"{args.csv} not found (the paper's data lives in ../shared/data)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.adam:
        adam_ratio(args.csv, args.adam, args.epochs, args.seed)
        return
    n_points = len(pd.read_csv(args.csv))
    configs = sample_configs(SearchSpace(), n_points, args.trials, args.seed)
    print(f"{args.trials} enqueued configurations on {args.csv.name} ({n_points} points), {args.workers} workers, "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        if args.default_path:
            units = args.units if args.units is not None else (
                SECTION_3_1_UNITS if args.csv.resolve() == DEFAULT_CSV.resolve() else "")
            results = {"ours": run_default_path(args.csv, args.trials, args.workers, Path(tmp), units)}
            r = results["ours"]
            given = f"units {units}" if units else "no units: no |ΔS_M| band folds"
            print(f"default path ({given}): search {r['search_s']:.1f} s + after it {r['after_s']:.1f} s = "
                  f"{r['wall_s']:.1f} s; worker restarts {r['restarts']}; TensorFlow lines in the CLI output: "
                  f"{r['tf_lines']}", flush=True)
            if r["ensemble_r2"]:
                print("the ensemble after it: training R² best {:.6f}, median {:.6f} of {} models".format(
                    *r["ensemble_r2"]), flush=True)
        else:
            results = {"ours": run_ours(args.csv, configs, args.workers, Path(tmp))}
        storage.dispose_all()
        if not args.skip_reference:
            results["reference"] = run_reference(args.csv, configs, args.workers, Path(tmp))
    print(f"\n{'':10s} {'wall s':>8s} {'complete':>8s} {'pruned':>6s} {'failed':>6s} {'best R²':>10s} "
          f"{'epochs':>7s} {'epochs/s/worker':>15s} {'peak RSS MB':>12s} {'peak PSS MB':>12s}")
    for name, r in results.items():
        rate = r["epochs"] / r["wall_s"] / args.workers
        rss = ", ".join(f"{m:.0f}" for m in r["peak_rss_mb"])
        pss = ", ".join(f"{m:.0f}" for m in r["peak_pss_mb"])
        print(f"{name:10s} {r['wall_s']:8.1f} {r['complete']:8d} {r['pruned']:6d} {r['failed']:6d} "
              f"{r['best_r2']:10.6f} {r['epochs']:7d} {rate:15.1f} {rss:>12s} {pss:>12s}")
    ours = results["ours"]
    if ours["train_s"]:
        print(f"\nours: writing curves took {ours['write_s']:.2f} s of {ours['train_s']:.1f} s training "
              f"({100 * ours['write_s'] / ours['train_s']:.2f} %)")
    if "reference" in results:
        print(f"speed-up (reference wall / ours wall): {results['reference']['wall_s'] / ours['wall_s']:.2f}x")


if __name__ == "__main__":
    main()
