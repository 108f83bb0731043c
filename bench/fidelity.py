"""Fidelity of |ΔS_M| from 8 coarse fields: baselines vs the network vs an ensemble, against exact truth.

    python bench/fidelity.py --seeds 0,1,2,3,4 --trials 30 --validate 10   # README figures, ~40 min on 2 cores
    python bench/fidelity.py --trials 30 --validate 10 --refine-epochs 0   # the paper's method only, ~6 min
    python bench/fidelity.py --trials 30 --validate 10 --patience 500 --refine-epochs 0   # full budget in the search
    python bench/fidelity.py --only synthetic --seeds 0 --trials 10   # a quick look

What it does
------------
(a) Synthetic: a Bean–Rodbell magnet (η = 0.5, J = 7/2, T0 = 35 K, Ms = 150 A·m²/kg)
    "measured" like the paper's ErCo2 set: 8 fields 0.01, 0.1, 0.5, 1, 2, 3, 4, 5 T,
    T = 10…60 K in 0.5 K steps (jittered by ±0.02 K), 0.1 % Gaussian noise, in emu
    (1.5 mg) and Oe. Its exact ΔS_M comes from the model's own entropy.
(b) traindata_Section3_1.csv from ../shared/data (ErCo2, 0.61 mg, emu and Oe): no
    exact truth, so the figures are peak, T_peak, FWHM and spikiness.

Methods: "direct" (the trapezoid on the measured fields, the paper's linear result),
linear and PCHIP interpolation along H, RBF (kernel, epsilon, smoothing by
leave-one-field-out CV), and for each of 3 seeds a real project search run by the
product itself — a project in a throw-away SQLite file (bench/out/fidelity.db), the
project's default search space (the paper's: 2–10 layers, 50–200 nodes, 500 epochs,
patience 20, successive halving; `--patience`/`--epochs` override) with that seed,
`--trials` finished trials run by `--workers` real worker processes (as `mat-interp
train` starts them), then ``validation.validate_project`` in this process (the best
`--validate` trials by training R², 3 interior fields held out one at a time). From each search:
"network (R²)" = the best single model by training R², "network (holdout)" = the best
by held-out RMSE, "ensemble (R²)" = the mean of the --ensemble (default 10, the product's
keep-models) best by R², "ensemble (holdout)" = the mean of the --ensemble best by held-out
RMSE among the validated ones (reported when --validate > --ensemble) — all of these are the
search's own models, i.e. the paper's method. `--validate 0` skips the held-out step. Then the
product's refinement runs as `mat-interp train` runs it after the search (``refine.refine_project``,
mat_interp_core/refine.py; off with `--refine-epochs 0`): the --ensemble best trials by search R²
retrained on all the data for the search's epochs again without early stop with Adam,
--refine-seeds networks averaged per configuration (default: the product's), all kept (`--refine-tolerance X` drops misfits over X x the best's);
"ensemble (refined)" = their mean, the ensemble the product now uses; "ensemble (refined, best 5)" =
the mean of the best 5 of them by refined R² (the product's earlier default). Every method's |ΔS_M|
comes from the grid the entropy command picks (0.1 K × 0.02 T over the measured range);
"@0.5K×0.2T" rows show the paper's coarser simulated grid. Below table (a), every seed of
every ensemble is checked against issue 3's targets (|peak error| <= 3 % and |ΔT_peak| <=
0.5 K at every ΔH, spikiness <= 1.05, RMSE <= 0.5 x linear's and below every baseline's).

The table goes to stdout and to bench/out/fidelity.csv (every method, seed and ΔH)
and bench/out/fidelity.txt. Two CPU cores; other jobs on the machine slow it down.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mat_interp_core import dataset, entropy, models, projects, refine, simulate, storage, synthetic, validation, workers  # noqa: E402
from mat_interp_core.baselines import BASELINES  # noqa: E402
from mat_interp_core.space import SearchSpace  # noqa: E402

OUT = ROOT / "bench" / "out"
SECTION31 = ROOT.parent / "shared" / "data" / "traindata_Section3_1.csv"
FIELDS_T = (0.01, 0.1, 0.5, 1, 2, 3, 4, 5)
DHS = [1.0, 2.0, 3.0, 4.0, 5.0]
MAGNET = synthetic.BeanRodbellMagnet(eta=0.5)
# The issue's note: at ΔH = 5 T the direct ErCo2 peak (49.65 J/kg/K here) is ~22 % above a later measurement of the
# same sample in 0.2 T steps, i.e. ~40.7 J/kg/K. An approximate reference only; that measurement is not in ../shared.
REF_ERCO2_PEAK_5T = 49.65 / 1.22
KEEP = SearchSpace().keep_models  # the product's ensemble: every kept model


def synthetic_data(noise: float) -> tuple[dataset.TrainingData, entropy.MagnetUnits]:
    frame = synthetic.demo_frame(MAGNET, fields_T=FIELDS_T, temperatures=np.arange(10.0, 60.0001, 0.5),
                                 mass_mg=synthetic.DEMO_MASS_MG, noise=noise, seed=0)
    data = dataset.validate(frame, "T (K)", "H (Oe)", "moment (emu)")
    return data, entropy.MagnetUnits("emu", "Oe", mass_mg=synthetic.DEMO_MASS_MG)


def erco2_data() -> tuple[dataset.TrainingData, entropy.MagnetUnits]:
    frame = dataset.read_table(SECTION31)
    data = dataset.validate(frame, "X1_demo1", "X2_demo1", "Y_demo1")
    return data, entropy.MagnetUnits("emu", "Oe", mass_mg=0.61)


# --------------------------------------------------------------------------- scoring


def exact_curve(t: np.ndarray, dh: float, h0: float, h_max: float) -> np.ndarray:
    """Exact |ΔS_M| over the field interval the integral really covers (it stops at the top field)."""
    return MAGNET.exact_delta_s(t, min(h0 + dh, h_max) - h0, h0)


def score(curves: pd.DataFrame, truth: bool, h0: float, h_max: float) -> list[dict]:
    rows = []
    for dh, part in curves.groupby("dH_T", sort=True):
        part = part.sort_values("T_K")
        t = part["T_K"].to_numpy()
        ds = part["dS_J_per_kgK"].to_numpy()
        f = entropy.figures_of_merit(part).iloc[0]
        row = {"dH_T": float(dh), "peak": f.peak_J_per_kgK, "T_peak": f.T_peak_K, "FWHM": f.FWHM_K,
               "spikiness": f.spikiness}
        if "dS_std" in part:
            row["peak_std_members"] = float(part["dS_std"].to_numpy()[np.argmax(ds)])
        if truth:
            ex = exact_curve(t, float(dh), h0, h_max)
            t_fine = np.arange(t[0], t[-1], 0.01)
            ex_fine = exact_curve(t_fine, float(dh), h0, h_max)
            row.update(
                exact_peak=float(ex_fine.max()),
                exact_T_peak=float(t_fine[np.argmax(ex_fine)]),
                peak_err_pct=100 * (f.peak_J_per_kgK / ex_fine.max() - 1),
                dT_peak=f.T_peak_K - float(t_fine[np.argmax(ex_fine)]),
                rmse=float(np.sqrt(np.mean((ds - ex) ** 2))),
            )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- one data set


def run_dataset(label: str, data, units, args, truth: bool) -> pd.DataFrame:
    x, y = data.arrays()
    x1, x2 = x[:, 0], x[:, 1]
    h_t = entropy.to_tesla(data.x2_values, units.h_unit)
    h0, h_max = float(h_t[0]), float(h_t[-1])
    rows: list[dict] = []

    def record(method: str, seed, curves: pd.DataFrame, seconds: float, **extra) -> None:
        for r in score(curves, truth, h0, h_max):
            rows.append({"data": label, "method": method, "seed": seed, "seconds": round(seconds, 1), **extra, **r})

    started = time.perf_counter()
    direct = entropy.delta_s(data.frame, t_col=data.x1_name, h_col=data.x2_name, m_col=data.y_name, dh_tesla=DHS,
                             **units.kwargs())
    record("direct", None, direct, time.perf_counter() - started)
    for key, cls in BASELINES.items():
        started = time.perf_counter()
        model = cls().fit(x1, x2, y)
        sim = entropy.simulated_delta_s(model, x1, x2, units, dh_tesla=DHS)
        record(key, None, sim.curves, time.perf_counter() - started)
        print(f"[{label}] {key}: {time.perf_counter() - started:.1f} s", flush=True)

    url = f"sqlite:///{OUT / 'fidelity.db'}"
    for seed in args.seeds:
        name = f"{label}-s{seed}"
        try:
            projects.delete_project(projects.open_project(url, name))
        except projects.ProjectError:
            pass
        overrides = {}
        if args.epochs:
            overrides["epochs"] = args.epochs
        if args.patience:
            overrides["patience"] = args.patience
        space = SearchSpace(seed=seed, keep_models=max(args.validate, args.ensemble),
                            refine_epochs=args.refine_epochs, **overrides)
        projects.create_project(url, name, data, space=space, n_trials=args.trials,
                                units={"m_unit": units.m_unit, "h_unit": units.h_unit, "mass_mg": units.mass_mg})
        started = time.perf_counter()
        procs = workers.launch_local(projects.open_project(url, name), args.workers)  # real worker processes, as `train` starts them
        for proc in procs:
            proc.wait()
        search_s = time.perf_counter() - started
        started = time.perf_counter()
        if args.validate:
            table = validation.validate_project(projects.open_project(url, name), top=args.validate, n_curves=args.curves)
            by_r2 = list(table.sort_values(["R2"], ascending=False)["trial"].astype(int))
            by_ho = list(table.sort_values(["holdout_rmse"])["trial"].astype(int))
        else:  # --validate 0: no held-out step, the search's own ranking
            table = None
            by_r2, by_ho = models.ranked(projects.open_project(url, name))[: args.ensemble], []
        valid_s = time.perf_counter() - started
        members = {m.trial_number: m for m in models.load(projects.open_project(url, name), by_r2)}  # the search's models
        refine_s, refined = 0.0, []
        if space.refinement_epochs:  # then the product's own step after the search (mat-interp train does the same)
            started = time.perf_counter()
            refine.refine_project(projects.open_project(url, name), top=args.ensemble, candidates=args.refine_candidates,
                                  epochs=space.refinement_epochs, seeds=args.refine_seeds,
                                  tolerance=args.refine_tolerance, solver=args.refine_solver)
            refine_s = time.perf_counter() - started
            refined = models.load_best(projects.open_project(url, name), args.ensemble)
        prog = projects.progress(projects.open_project(url, name))
        print(f"[{label}] seed {seed}: search {search_s:.0f} s ({prog['complete']} complete, {prog['pruned']} pruned, "
              f"{prog['failed']} failed), validation {valid_s:.0f} s, refinement {refine_s:.0f} s", flush=True)
        if table is not None:
            print(table[["trial", "R2", "holdout_rmse", "layers", "nodes", "lr", "batch", "solver"]]
                  .to_string(index=False), flush=True)
        if refined:
            print(f"[{label}] seed {seed}: refined ensemble: " + ", ".join(
                f"trial {m.trial_number} (R² {m.value:.6f})" for m in refined), flush=True)
        holdout = table.set_index("trial")["holdout_rmse"] if table is not None else pd.Series(dtype=float)
        common = dict(search_s=round(search_s), validation_s=round(valid_s), refine_s=round(refine_s))
        singles = [("network (R²)", by_r2[0])] + ([("network (holdout)", by_ho[0])] if by_ho else [])
        for method, number in singles:
            t0 = time.perf_counter()
            sim = entropy.simulated_delta_s(members[number], x1, x2, units, dh_tesla=DHS)
            record(method, seed, sim.curves, time.perf_counter() - t0, trial=number, R2=members[number].value,
                   holdout_rmse=float(holdout.get(number, np.nan)), **common)
        k = args.ensemble
        rankings = [("R²", [members[n] for n in by_r2[:k]])]
        if args.validate > k:
            rankings.append(("holdout", [members[n] for n in by_ho[:k]]))
        if refined:
            rankings.append(("refined", refined))
            if len(refined) > 5:  # the earlier default: the best 5 refined by R²
                rankings.append(("refined, best 5", refined[:5]))
        for rank_name, chosen in rankings:
            ens = simulate.Ensemble(chosen)
            t0 = time.perf_counter()
            sim = entropy.simulated_delta_s(ens, x1, x2, units, dh_tesla=DHS)
            trials = ",".join(str(m.trial_number) for m in chosen)
            record(f"ensemble ({rank_name})", seed, sim.curves, time.perf_counter() - t0, trial=trials,
                   members=len(ens.members), **common)
            if rank_name in ("R²", "refined"):
                sim = entropy.simulated_delta_s(ens, x1, x2, units, dh_tesla=DHS, t_step=0.5, h_step_t=0.2)
                record(f"ensemble ({rank_name}) @0.5K×0.2T", seed, sim.curves, 0.0, trial=trials,
                       members=len(ens.members), **common)
        # every validated trial on its own: does its held-out error or its R² tell the better |ΔS_M|?
        for number in (by_r2 if table is not None else []):
            sim = entropy.simulated_delta_s(members[number], x1, x2, units, dh_tesla=DHS)
            record("trial", seed, sim.curves, 0.0, trial=number, R2=members[number].value,
                   holdout_rmse=float(holdout.loc[number]), **common)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- report


def _pm(values: pd.Series, fmt: str) -> str:
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return "-"
    if v.size == 1:
        return format(v[0], fmt)
    return f"{format(v.mean(), fmt)} ± {format(v.std(ddof=0), fmt)}"


def summary(results: pd.DataFrame) -> str:
    lines = []
    trials = results[results["method"] == "trial"]
    results = results[results["method"] != "trial"]
    order = list(dict.fromkeys(results["method"]))
    syn = results[results["data"] == "synthetic"]
    if len(syn):
        lin_rmse = syn[syn.method == "linear"].groupby("dH_T")["rmse"].mean()
        lines.append("(a) Bean–Rodbell η = 0.5 from 8 fields, against the exact |ΔS_M| (networks: mean ± std over seeds)")
        head = (f"{'method':24s} {'peak error % at ΔH = 1 … 5 T':44s} {'max|ΔT_pk| K':>12s} {'max spik.':>10s} "
                f"{'RMSE J/kgK (mean over ΔH)':>26s} {'RMSE/linear':>11s} {'worst ΔH RMSE/lin':>17s}")
        lines += [head, "-" * len(head)]
        for method in order:
            part = syn[syn.method == method]
            if part.empty:
                continue
            per_dh = part.groupby("dH_T")
            errs = " ".join(f"{per_dh.get_group(dh)['peak_err_pct'].mean():+6.2f}" for dh in DHS)
            per_seed = part.groupby(part["seed"].fillna(-1))
            max_dt = per_seed["dT_peak"].apply(lambda s: s.abs().max())
            max_spk = per_seed["spikiness"].max()
            rmse = per_seed["rmse"].mean()
            ratio = per_seed.apply(lambda g: (g.set_index("dH_T")["rmse"] / lin_rmse).mean())
            worst = per_seed.apply(lambda g: (g.set_index("dH_T")["rmse"] / lin_rmse).max())
            lines.append(f"{method:24s} {errs:44s} {_pm(max_dt, '.2f'):>12s} {_pm(max_spk, '.3f'):>10s} "
                         f"{_pm(rmse, '.3f'):>26s} {_pm(ratio, '.2f'):>11s} {_pm(worst, '.2f'):>17s}")
        lines += targets_per_seed(syn, lin_rmse, order)
        exact = syn[syn.method == "linear"].groupby("dH_T")[["exact_peak", "exact_T_peak"]].first()
        lines.append("exact peaks: " + ", ".join(f"ΔH={dh:g} T: {r.exact_peak:.3f} J/(kg·K) at {r.exact_T_peak:.2f} K"
                                                 for dh, r in exact.iterrows()))
        lines.append("")
    er = results[results["data"] == "erco2"]
    if len(er):
        lines.append("(b) ErCo2 (Section 3.1, 0.61 mg) from its 8 fields (no exact truth; networks: mean ± std over seeds)")
        head = (f"{'method':24s} {'peak at ΔH = 1 … 5 T (J/kg/K)':52s} {'T_peak(5T) K':>14s} {'FWHM(5T) K':>12s} "
                f"{'spikiness 1 … 5 T':>36s}")
        lines += [head, "-" * len(head)]
        for method in order:
            part = er[er.method == method]
            if part.empty:
                continue
            per_dh = part.groupby("dH_T")
            peaks = " ".join(f"{per_dh.get_group(dh)['peak'].mean():9.3f}" for dh in DHS)
            five = part[part.dH_T == 5.0]
            spk = " ".join(f"{per_dh.get_group(dh)['spikiness'].mean():6.3f}" for dh in DHS)
            lines.append(f"{method:24s} {peaks:52s} {_pm(five['T_peak'], '.2f'):>14s} {_pm(five['FWHM'], '.2f'):>12s} "
                         f"{spk:>36s}")
        lines.append("")
    lines += objective_summary(trials)
    return "\n".join(lines)


# issue 3's fidelity targets on the synthetic truth, for every seed and every ΔH
TARGETS = dict(peak_pct=3.0, dT_K=0.5, spikiness=1.05, rmse_over_linear=0.5)


def targets_per_seed(syn: pd.DataFrame, lin_rmse: pd.Series, order: list[str]) -> list[str]:
    """Per seed of the ensemble methods: the worst figure over ΔH against each target, and whether all are met."""
    base = syn[syn.seed.isna() & (syn.method != "linear") & (syn.method != "direct")]
    best_baseline = base.groupby("method")["rmse"].mean().min()
    lines = ["", f"targets per seed: |peak error| <= {TARGETS['peak_pct']:g} % and |ΔT_peak| <= {TARGETS['dT_K']:g} K "
             f"at every ΔH, spikiness <= {TARGETS['spikiness']:g}, RMSE/linear <= {TARGETS['rmse_over_linear']:g} and "
             f"RMSE < the best baseline's {best_baseline:.3f}"]
    head = (f"{'method':24s} {'seed':>4s} {'max|peak err| %':>15s} {'max|ΔT_pk| K':>12s} {'max spik.':>9s} "
            f"{'RMSE':>7s} {'RMSE/lin':>8s}  verdict")
    lines += [head, "-" * len(head)]
    for method in order:
        if not method.startswith("ensemble"):
            continue
        for seed, g in syn[syn.method == method].groupby("seed"):
            worst_pk = g["peak_err_pct"].abs().max()
            worst_dt = g["dT_peak"].abs().max()
            spk = g["spikiness"].max()
            rmse = g["rmse"].mean()
            ratio = (g.set_index("dH_T")["rmse"] / lin_rmse).mean()
            fails = [name for name, bad in (("peak", worst_pk > TARGETS["peak_pct"]), ("T_peak", worst_dt > TARGETS["dT_K"]),
                                            ("spikiness", spk > TARGETS["spikiness"]),
                                            ("RMSE/linear", ratio > TARGETS["rmse_over_linear"]),
                                            ("RMSE vs baselines", rmse >= best_baseline)) if bad]
            verdict = "all met" if not fails else "missed: " + ", ".join(fails)
            lines.append(f"{method:24s} {int(seed):4d} {worst_pk:15.2f} {worst_dt:12.2f} {spk:9.3f} {rmse:7.3f} "
                         f"{ratio:8.2f}  {verdict}")
    return lines


def objective_summary(trials: pd.DataFrame) -> list[str]:
    """Per search: how well each objective ranks the validated trials by the quality of their |ΔS_M|."""
    from scipy.stats import spearmanr

    lines = []
    for label, part in trials.groupby("data", sort=False):
        quality = "rmse" if label == "synthetic" else "dev_pct"
        if label != "synthetic":
            # no truth: distance of the ΔH = 5 T peak from the 0.2 T-step measurement (~22 % below direct)
            ref = REF_ERCO2_PEAK_5T
            part = part[part.dH_T == 5.0].assign(dev_pct=lambda d: 100 * (d["peak"] / ref - 1).abs())
        per = part.groupby(["seed", "trial"]).agg(q=(quality, "mean"), R2=("R2", "first"),
                                                   holdout=("holdout_rmse", "first")).reset_index()
        rows = []
        for seed, g in per.groupby("seed"):
            if len(g) < 3:
                continue
            rows.append({
                "seed": seed, "n": len(g),
                "rho_R2": spearmanr(-g["R2"], g["q"]).statistic,
                "rho_holdout": spearmanr(g["holdout"], g["q"]).statistic,
                "pick_R2": float(g.loc[g["R2"].idxmax(), "q"]),
                "pick_holdout": float(g.loc[g["holdout"].idxmin(), "q"]),
                "best": float(g["q"].min()), "med": float(g["q"].median()),
            })
        if not rows:
            continue
        what = ("|ΔS_M| RMSE vs exact (J/kg/K, mean over ΔH)" if label == "synthetic"
                else f"|peak(5 T) − {REF_ERCO2_PEAK_5T:.1f}| in %")
        lines.append(f"({'a' if label == 'synthetic' else 'b'}') objectives on {label}: Spearman ρ between each "
                     f"objective's rank and {what} over the validated trials (ρ > 0: the objective ranks the "
                     "better |ΔS_M| first), and the quality of each objective's pick")
        lines.append(f"{'seed':>4s} {'trials':>6s} {'ρ(R²)':>7s} {'ρ(holdout)':>10s} {'pick by R²':>11s} "
                     f"{'pick by holdout':>15s} {'best':>7s} {'median':>7s}")
        for r in rows:
            lines.append(f"{int(r['seed']):4d} {r['n']:6d} {r['rho_R2']:7.2f} {r['rho_holdout']:10.2f} "
                         f"{r['pick_R2']:11.3f} {r['pick_holdout']:15.3f} {r['best']:7.3f} {r['med']:7.3f}")
        frame = pd.DataFrame(rows)
        lines.append(f"mean {'':6s} {frame.rho_R2.mean():7.2f} {frame.rho_holdout.mean():10.2f} "
                     f"{frame.pick_R2.mean():11.3f} {frame.pick_holdout.mean():15.3f} {frame.best.mean():7.3f} "
                     f"{frame.med.mean():7.3f}")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("synthetic", "erco2"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=30, help="finished trials per search (default 30)")
    parser.add_argument("--ensemble", type=int, default=KEEP,
                        help=f"models averaged in the ensemble (default: the product's keep-models, {KEEP})")
    parser.add_argument("--validate", type=int, default=5,
                        help="best trials (by R²) kept and validated (default 5; above --ensemble the ensemble of the "
                             "best by held-out error is reported too)")
    parser.add_argument("--curves", type=int, default=3, help="interior fields held out in the validation")
    parser.add_argument("--epochs", type=int, help="override the search space's epoch budget (default: the paper's 500)")
    parser.add_argument("--patience", type=int, help="override the early-stopping patience (default: the paper's 20)")
    parser.add_argument("--refine-epochs", type=int,
                        help="epochs of the refinement after each search, no early stop (default: the product's, "
                             "the search's epochs; 0: no refinement, the paper's method only)")
    parser.add_argument("--refine-candidates", type=int, help="trials refined (default: the product's, --ensemble)")
    parser.add_argument("--refine-seeds", type=int, default=refine.DEFAULT_SEEDS,
                        help=f"seeds averaged per refined configuration (default {refine.DEFAULT_SEEDS})")
    parser.add_argument("--refine-tolerance", type=float, default=refine.DEFAULT_TOLERANCE,
                        help="also drop refined models whose 1 - R² exceeds this x the best's (default: off, as "
                             "the product)")
    parser.add_argument("--refine-solver", default=refine.DEFAULT_SOLVER,
                        help=f"optimizer of the refinement (default {refine.DEFAULT_SOLVER}; trial: each trial's own)")
    parser.add_argument("--noise", type=float, default=1e-3, help="relative noise of the synthetic data")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes of each search (default: one per core, one thread each)")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    parser.add_argument("--report", metavar="CSV", help="only print the tables of an earlier run's CSV")
    args = parser.parse_args(argv)
    if args.report:
        path = Path(args.report)
        report(pd.read_csv(path), f"(tables of {path.name})", None, path.with_suffix(".txt"))
        return 0
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    from mat_interp_core import network

    network.configure_threads(os.cpu_count() or 1)  # the in-process validation retraining
    storage.init_database(f"sqlite:///{OUT / 'fidelity.db'}")
    started = time.perf_counter()
    frames = []
    if args.only in (None, "synthetic"):
        data, units = synthetic_data(args.noise)
        frames.append(run_dataset("synthetic", data, units, args, truth=True))
    if args.only in (None, "erco2"):
        if SECTION31.is_file():
            data, units = erco2_data()
            frames.append(run_dataset("erco2", data, units, args, truth=False))
        else:
            print(f"skipping ErCo2: {SECTION31} not found")
    results = pd.concat(frames, ignore_index=True)
    elapsed = time.perf_counter() - started
    tag = f"-{args.tag}" if args.tag else ""
    results.to_csv(OUT / f"fidelity{tag}.csv", index=False)  # first: the summary must not lose the figures
    command = "python bench/fidelity.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report(results, command.strip(), elapsed, OUT / f"fidelity{tag}.txt")
    return 0


def report(results: pd.DataFrame, command: str, elapsed: float | None, path: Path) -> None:
    text = summary(results)
    footer = f"command: {command}\n" + (f"runtime: {elapsed:.0f} s on {os.cpu_count()} cores" if elapsed else "")
    print("\n" + text + footer)
    path.write_text(text + footer + "\n")
    print(f"wrote {path.with_suffix('.csv')} and {path}")


if __name__ == "__main__":
    raise SystemExit(main())
