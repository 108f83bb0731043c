"""Measure next, checked on the family (issue 10, item 4): does measuring the field `suggest` ranks first cut the
|ΔS_M| peak error more than measuring the midpoint of the widest gap between the measured fields?

    nice -n 5 python bench/suggest_check.py --seed 6 --cases 1,4 --repeats 2 --tag s6
    nice -n 5 python bench/suggest_check.py --seed 6 --cases 1 --base DIR      # base projects trained before
    python bench/suggest_check.py --report 'bench/out/suggest-check-*.csv'     # the table of one or more runs

Per family case (bench/family.py's M(T) cases): a base project, trained here as `mat-interp train` runs it (or a
stored one: DIR/s{seed}c{case}.db, its project named family-caseNN as bench/family.py names it; copied, never
changed), gives the field `mat-interp suggest` ranks first for the case's ΔH values, and the naive choice, the
midpoint in tesla of the widest gap (the lowest of equally wide ones). For each of the two fields the exact magnet is
measured there as the case's other fields were (``family.with_field``: the same temperatures, jitter and noise;
where `suggest` ranks finer temperature steps first, every field halfway between its temperatures over the range
it names, ``family.with_temperatures``),
the default path is run again (--repeats searches, seeded differently; the same new measurement for both fields of
one repeat), and the default answer's peak is scored against the exact |ΔS_M| at each ΔH (``family.score``).

A case whose two fields lie in the same gap is a tie by construction and only reported. Verdict: the cases where
the suggestion's mean |peak error| (over ΔH and repeats) is below the midpoint's. Scatter between searches of one
data set is of the same size as many differences here (README), so a case needs repeats and the verdict needs
cases; the report also counts the cases where every repeat of one option beat every repeat of the other (a
difference beyond that scatter), and the calibrated band's coverage over the retrained projects (new searches on
data the band's factors were never set on). Output: bench/out/suggest-check[-TAG].csv (one row per case, option, repeat and ΔH) and .txt.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from family import OUT, Case, _parse_cases, family_cases, run_product, score, with_field, with_temperatures  # noqa: E402
from mat_interp_core import entropy, projects, simulate, uncertainty  # noqa: E402


def candidates(case: Case, url: str) -> tuple[float | tuple[float, float], float, list[dict]]:
    """(suggest's first row: a field in T, or (from, to) K of finer temperature steps; the widest gap's
    midpoint in T; the base answer's scored rows)."""
    project = projects.open_project(url, f"family-{case.name}")
    result = simulate.project_entropy(project, case.units, dh_tesla=list(case.dhs))
    table = uncertainty.result_suggestions(result)
    if table.empty:
        raise ValueError(f"{case.name}: suggest ranks nothing ({result.calibration.reason or 'no reduction'})")
    first = table.iloc[0]
    if np.isfinite(first["t_step"]):
        top: float | tuple[float, float] = (float(first["t_from"]), float(first["t_to"]))
    else:
        top = float(f"{float(entropy.to_tesla(float(first['x2']), case.units.h_unit)):.3g}")
    fields = np.asarray(case.fields_T)
    j = int(np.argmax(np.diff(fields)))
    return top, float(0.5 * (fields[j] + fields[j + 1])), score(case, "product", result, 0.0)


def same_gap(fields: tuple[float, ...], a: float, b: float) -> bool:
    return int(np.searchsorted(fields, a)) == int(np.searchsorted(fields, b))


def run_case(case: Case, seed: int, base_dir: Path | None, out_dir: Path, *, repeats: int, trials: int,
             workers_n: int) -> list[dict]:
    index = f"s{seed}c{case.index}"
    base_db = out_dir / f"{index}-base.db"
    stored = base_dir / f"{index}.db" if base_dir else None
    if stored and stored.exists():
        shutil.copy(stored, base_db)
    elif not base_db.exists():
        run_product(case, f"sqlite:///{base_db}", trials=trials, workers_n=workers_n, seed=seed + case.index,
                    quick=False)
    top, mid, base = candidates(case, f"sqlite:///{base_db}")
    finer = isinstance(top, tuple)
    said = f"every field between its temperatures from {top[0]:g} to {top[1]:g} K" if finer else f"{top:g} T"
    extra = {"seed": seed, "index": case.index, "points": len(case.frame), "suggested_T": np.nan if finer else top,
             "suggested": said, "midpoint_T": mid}
    rows = [dict(r, option="base", field_T=np.nan, repeat=0, **extra) for r in base]
    tie = not finer and same_gap(case.fields_T, top, mid)
    print(f"{index} {case.layout}: suggest {said}, widest gap's midpoint {mid:g} T"
          + (" (the same gap: a tie, not retrained)" if tie else ""), flush=True)
    if tie:
        return [dict(r, tie=True) for r in rows]
    for r in range(repeats):
        for option, field_t in (("suggest", top), ("midpoint", mid)):
            rng = np.random.default_rng([seed, case.index, r])
            measured = (with_temperatures(case, *field_t, rng) if isinstance(field_t, tuple)
                        else with_field(case, field_t, rng))
            db = out_dir / f"{index}-{option}{r}.db"
            started = time.perf_counter()
            found = run_product(measured, f"sqlite:///{db}", trials=trials, workers_n=workers_n,
                                seed=seed + case.index + 1000 * r, quick=False)
            shown = np.nan if isinstance(field_t, tuple) else field_t
            rows += [dict(x, option=option, field_T=shown, repeat=r, **extra) for x in found]
            errs = " ".join(f"{x['peak_err_pct']:+.1f}" for x in found)
            print(f"  {option} {said if option == 'suggest' else f'{field_t:g} T'}, repeat {r}: {errs} % "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    return [dict(r, tie=False) for r in rows]


def report(results: pd.DataFrame) -> str:
    """Per case the mean |peak error| over ΔH (and repeats) of each option, and the verdict."""
    results = results.assign(abs_err=results["peak_err_pct"].abs())
    lines = ["mean |peak error| % over ΔH after measuring the field (per repeat); base: before measuring",
             f"{'case':<7} {'layout':<15} {'pts':>4} {'suggest T':>9} {'midpoint T':>10} {'base':>6} "
             f"{'suggest':>22} {'midpoint':>22}  better"]
    wins = played = 0
    diffs, apart = [], []  # apart: whether each option's repeats all beat the other's (no overlap)
    for (seed, index), part in results.groupby(["seed", "index"], sort=True):
        first = part.iloc[0]
        mean = {o: part[part.option == o].groupby("repeat")["abs_err"].mean() for o in ("base", "suggest", "midpoint")}
        said = "finer T" if pd.isna(first["suggested_T"]) else f"{first['suggested_T']:.3g}"
        head = (f"{f's{seed}c{index}':<7} {first['layout']:<15} {first['points']:>4} {said:>9} "
                f"{first['midpoint_T']:>10.3g} {mean['base'].mean():>6.2f}")
        if bool(first["tie"]) or mean["suggest"].empty or mean["midpoint"].empty:
            lines.append(head + ("   same gap: a tie" if bool(first["tie"]) else "   not run"))
            continue
        s, m = mean["suggest"].mean(), mean["midpoint"].mean()
        played += 1
        wins += s < m
        diffs.append(s - m)
        if mean["suggest"].max() < mean["midpoint"].min() or mean["midpoint"].max() < mean["suggest"].min():
            apart.append(s < m)
        per = {o: f"{mean[o].mean():.2f} ({'/'.join(f'{v:.2f}' for v in mean[o])})" for o in ("suggest", "midpoint")}
        lines.append(head + f" {per['suggest']:>22} {per['midpoint']:>22}  " + ("suggest" if s < m else "midpoint"))
    retrained = results[results.option.isin(["suggest", "midpoint"])].dropna(subset=["covered"])
    if len(retrained):  # every retrained project is a new search on data the band was never tuned on
        lines.append(f"\nthe band of the retrained projects covers {int(retrained['covered'].sum())} of "
                     f"{len(retrained)} (case, option, repeat, ΔH) peaks, median half-width "
                     f"{retrained['band_half_pct'].median():.2f} % of the peak")
    if diffs:
        lines.append(f"suggest minus midpoint, per case: median {np.median(diffs):+.2f}, mean {np.mean(diffs):+.2f}, "
                     f"from {min(diffs):+.2f} to {max(diffs):+.2f} points of mean |peak error|")
        lines.append(f"cases where every repeat of one option beat every repeat of the other: {len(apart)}; "
                     f"the suggestion's on {sum(apart)} of them")
    lines.append(f"\nverdict: the top suggestion cut the mean |peak error| more than the widest gap's midpoint on "
                 f"{wins} of {played} cases (ties left out); the target is most cases"
                 + (" — met" if played and wins > played / 2 else " — NOT met"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=6, help="the family's seed (default 6)")
    parser.add_argument("--cases", help="case indices, e.g. 1,4,17 (default: all 24)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="inhomogeneous magnets, as bench/family.py --spread (default 0: none)")
    parser.add_argument("--repeats", type=int, default=2, help="searches per option (default 2)")
    parser.add_argument("--trials", type=int, default=30, help="finished trials per search (default 30, as train)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes per search")
    parser.add_argument("--base", type=Path, help="a directory of trained base projects, s{seed}c{case}.db")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    parser.add_argument("--report", metavar="GLOB", help="only print the table of earlier runs' CSVs")
    args = parser.parse_args(argv)
    if args.report:
        paths = sorted(glob.glob(args.report))
        if not paths:
            parser.error(f"no CSV matches {args.report}")
        print(report(pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)))
        return 0
    import warnings

    import optuna

    from mat_interp_core import network

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    network.configure_threads(os.cpu_count() or 1)
    tag = f"-{args.tag}" if args.tag else ""
    out_dir = OUT / f"suggest-check{tag}"
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = OUT / f"suggest-check{tag}.csv"
    cases = family_cases(24, args.seed, spread=args.spread)
    rows: list[dict] = []
    for i in _parse_cases(args.cases, len(cases)):
        rows += run_case(cases[i], args.seed, args.base, out_dir, repeats=args.repeats, trials=args.trials,
                         workers_n=args.workers)
        pd.DataFrame(rows).to_csv(csv, index=False)  # after every case: an interrupted run keeps its figures
    text = report(pd.DataFrame(rows)) + "\ncommand: python bench/suggest_check.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    print("\n" + text)
    csv.with_suffix(".txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
