"""Which refinement, for its cost: the steps after the search compared on the same searches (issue 12's lever).

    nice -n 10 python bench/refine_budget.py --cases 0-3                # family cases 0-3, every variant
    python bench/refine_budget.py --cases 0 --variants none,search:1x250 --trials 10   # a quick look
    nice -n 10 python bench/refine_budget.py --seed 3 --cases 3,4,5,6,7,8 --variants none,scratch:1x1000,scratch:1x500 --folds --tag s14
                                          # each budget for the refinement and the band's folds, with the band's coverage
    nice -n 10 python bench/refine_budget.py --seed 6 --cases 4,17,1,3,14,0 --variants scratch:1x500:floor1,scratch:1x500 --folds --tag s21
                                          # the step floor (session 21) against none, on the same searches

For each case of the family benchmark (bench/family.py: seeded synthetic magnets, several field layouts,
exact |ΔS_M|), one real search as `mat-interp train` runs it (the default search space with the case's seed,
--trials finished trials on --workers worker processes, no steps after it). Then, for each variant, a copy
of that project's SQLite file is refined in this process (``refine.refine_project`` with the variant's start,
seeds and epoch budget; everything else the product's default) and scored with the product's entropy path
(``simulate.project_entropy``: the ensemble of every kept model) against the exact |ΔS_M|: |peak error| at
each ΔH, RMSE. So every variant sees the same searched configurations, and the times are measured side by
side in one run (one process, this machine's threads).

Variants: "none" (the search's own models: the paper's networks as an ensemble), "scratch:SxE" (S seeds
trained from new weights for E epochs, side by side, and averaged: S=3, E=1000 is the product's default until
this bench), "search:SxE" (the search's stored model of each configuration goes on training for E epochs
with the learning-rate decay; S copies of it on different batch orders). A suffix ":floorN" sets the floor of
optimizer steps per epoch of budget (``refine.MIN_STEPS_PER_EPOCH``, 8 by default; ":floor1" is the budget before
session 21) for that variant's refinement and folds.

With --folds, each variant also trains the band's held-out folds at its own epoch budget (the project's
stored ``refine_epochs`` set to the variant's, as a project with that default would have it:
``uncertainty.calibrate_project``), so the score has the calibrated band, its coverage of the exact peak and
its half-width, and the seconds count both steps. --seed picks the family's seed (cases never tuned on).

Prints per variant: refinement seconds (median and worst over cases, and as a ratio to scratch:3x1000), and
|peak error| median (worst) over cases at each ΔH. The rows go to bench/out/refine_budget[-TAG].csv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from family import OUT, _median_worst, _parse_cases, family_cases, score  # noqa: E402
from mat_interp_core import projects, refine, simulate, storage, uncertainty, workers  # noqa: E402
from mat_interp_core.space import SearchSpace  # noqa: E402

DEFAULT_VARIANTS = "none,scratch:3x1000,scratch:1x1000,search:1x250,search:1x500,search:2x250"
REFERENCE = "scratch:3x1000"


def parse_variant(text: str) -> tuple[str, int, int, int]:
    """'search:1x250' -> ('search', 1, 250, 0); 'scratch:1x500:floor1' -> (..., 1), the refinement's and folds'
    floor of optimizer steps per epoch (0: the product's); 'none' -> ('none', 0, 0, 0)."""
    if text == "none":
        return "none", 0, 0, 0
    start, _, rest = text.partition(":")
    budget, _, suffix = rest.partition(":")
    seeds, _, epochs = budget.partition("x")
    floor = suffix.removeprefix("floor") if suffix else "0"
    if (start not in refine.STARTS or not seeds.isdigit() or not epochs.isdigit() or not floor.isdigit()
            or (suffix and (not suffix.startswith("floor") or int(floor) < 1))):
        raise SystemExit(f"--variants: {text!r} is not none or START:SEEDSxEPOCHS[:floorN] with START in "
                         f"{refine.STARTS}")
    return start, int(seeds), int(epochs), int(floor)


def search(case, path: Path, trials: int, workers_n: int, seed: int) -> float:
    """The case's search (no steps after it) into the SQLite file `path`; returns its seconds."""
    url = f"sqlite:///{path}"
    units = {"m_unit": case.units.m_unit, "h_unit": case.units.h_unit, "mass_mg": case.units.mass_mg,
             "molar_mass_g": case.units.molar_mass_g}
    projects.create_project(url, "p", case.data(), space=SearchSpace(seed=seed), n_trials=trials, units=units)
    started = time.perf_counter()
    for proc in workers.launch_local(projects.open_project(url, "p"), workers_n, finish=False):
        proc.wait()
    storage.dispose_all()
    return time.perf_counter() - started


def set_refine_epochs(url: str, epochs: int) -> None:
    """The stored project's search space with ``refine_epochs`` = `epochs` (what its folds and progress read)."""
    engine = storage.get_engine(url)
    with engine.begin() as conn:
        row = conn.execute(sa.select(storage.projects.c.space).where(storage.projects.c.name == "p")).one()
        space = {**json.loads(row.space), "refine_epochs": int(epochs)}
        conn.execute(storage.projects.update().where(storage.projects.c.name == "p").values(space=json.dumps(space)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="0-3", help="family case indices, e.g. 0-3 or 0,5 (default 0-3)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma list (default {DEFAULT_VARIANTS})")
    parser.add_argument("--trials", type=int, default=30, help="finished trials per search (default 30, as train)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes per search")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    parser.add_argument("--seed", type=int, default=0, help="the family's seed (default 0)")
    parser.add_argument("--folds", action="store_true",
                        help="also train the band's folds at each variant's epoch budget and score the band")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    parsed = {v: parse_variant(v) for v in variants}
    default_floor = refine.MIN_STEPS_PER_EPOCH
    cases = family_cases(seed=args.seed)
    chosen = [(i, cases[i]) for i in _parse_cases(args.cases, len(cases))]
    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / f"refine_budget{'-' + args.tag if args.tag else ''}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    rows = []
    for index, case in chosen:
        base = work / f"{case.name}.db"
        search_s = search(case, base, args.trials, args.workers, seed=index)
        print(f"[{case.name}] {case.layout}, {len(case.data().x2_values)} fields, "
              f"{len(case.data().arrays()[1])} points: search {search_s:.0f} s", flush=True)
        for variant in variants:
            start, seeds, epochs, floor = parsed[variant]
            refine.MIN_STEPS_PER_EPOCH = floor or default_floor  # read by refine.refine_epochs (folds too)
            path = work / f"{case.name}-{variant.replace(':', '_')}.db"
            shutil.copy(base, path)
            url = f"sqlite:///{path}"
            started = time.perf_counter()
            if start != "none":
                refine.refine_project(projects.open_project(url, "p"), epochs=epochs, seeds=seeds, start=start)
            refine_s = time.perf_counter() - started
            if start != "none" and args.folds:
                set_refine_epochs(url, epochs)
                storage.dispose_all()
                uncertainty.calibrate_project(projects.open_project(url, "p"))
            seconds = time.perf_counter() - started
            result = simulate.project_entropy(projects.open_project(url, "p"), case.units, dh_tesla=list(case.dhs))
            scored = score(case, variant, result, seconds, search_s=round(search_s), refine_s=round(refine_s, 1))
            rows += scored
            storage.dispose_all()
            errs = " ".join(f"{r['peak_err_pct']:+.2f}" for r in scored)
            bands = " ".join(f"{'' if r['covered'] is True else '!'}±{r['band_half_pct']:.1f}"
                             for r in scored if r["band_kind"] == "calibrated")
            print(f"[{case.name}] {variant:>16}: {seconds:6.0f} s (refinement {refine_s:.0f} s), peak error {errs} %"
                  + (f", band {bands} % (! misses)" if bands else ""), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(work.with_suffix(".csv"), index=False)
    ref = table[table.method == REFERENCE].groupby("case")["seconds"].first()
    lines = ["variant | seconds median (worst) | × " + REFERENCE + " | |peak error| % median (worst) at ΔH = "
             + ", ".join(f"{d:g}" for d in sorted(table.dH_T.unique())) + " T"]
    for variant in variants:
        part = table[table.method == variant]
        secs = part.groupby("case")["seconds"].first()
        ratio = (ref / secs).dropna() if not ref.empty else pd.Series(dtype=float)
        errs = [_median_worst(part[part.dH_T == d]["peak_err_pct"].abs()) for d in sorted(table.dH_T.unique())]
        banded = part[part.band_kind == "calibrated"]
        cover = (f" | band covers {int(banded.covered.sum())}/{len(banded)}, half-width % "
                 f"{_median_worst(banded.band_half_pct)}" if len(banded) else "")
        lines.append(f"{variant} | {_median_worst(secs)} | "
                     f"{'' if ratio.empty else f'{ratio.median():.1f}'} | " + "; ".join(errs) + cover)
    text = "\n".join(lines)
    print(text)
    work.with_suffix(".txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
