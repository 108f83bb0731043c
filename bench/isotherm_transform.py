"""Which input column the networks' field transform belongs on for isotherms, measured on the family's isotherm cases.

    nice -n 10 python bench/isotherm_transform.py                          # seeds 0-2, cases 0-5, ~25 min on 2 cores
    nice -n 10 python bench/isotherm_transform.py --seeds 1 --cases 3,4,5 --variants asinh:1,linear:1,asinh:0,cbrt:0

An isotherm project's X1 is the field and X2 the temperature. Each variant (kind:column, column 1 = X2, the
temperature, as every project had it until session 19; column 0 = X1, the field) trains the same configuration
(4x128 ReLU, Adam, lr 2e-3, batch 64, 500 epochs at the refinement's step budget, two seeds side by side,
averaged) on the case's data (`bench/family.py --isotherms --matched` cases: each isotherm case at its M(T)
case's temperature step) and integrates |ΔS_M| by the product's isotherm path; the peak error against the
exact magnet at ΔH = 1…5 T is printed per case, then the median and worst over cases. No search, no choice
among methods: the networks alone, one configuration, so only the transform differs between variants.

Output: the table on stdout and bench/out/isotherm_transform.csv.
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
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import family  # noqa: E402
from mat_interp_core import isotherms, models, network, refine, training  # noqa: E402

CONFIG = {"layers": 4, "nodes": 128, "solver": "adam", "lr": 2e-3, "batch": 64}
EPOCHS = 500


def peak_errors(case, kind: str, column: int) -> list[float]:
    """Peak error (%) at each ΔH of the networks trained with the transform `kind` on input `column`."""
    data = case.data()
    params = {**CONFIG, "x2_transform": kind, "transform_column": column}
    epochs = refine.refine_epochs(EPOCHS, len(data.arrays()[1]), params["batch"])
    pairs, mean, std = training.train_configs(data, params, epochs=epochs, patience=10**6, seeds=[11, 12])
    model = models.TrainedModel(0, 0.0, network.average_models([network.with_target_scaling(m, mean, std)
                                                                for m, _ in pairs]))
    curves = isotherms.isotherm_entropy(data, case.units, model, dh_tesla=list(case.dhs)).curves
    return [100 * (curves.loc[np.isclose(curves["dH_T"], dh), "dS_J_per_kgK"].max() / family.exact_peak(case, dh)[0]
                   - 1) for dh in case.dhs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="family seeds (default 0,1,2)")
    parser.add_argument("--cases", default="0-5", help="isotherm cases of each seed, e.g. 0-5 or 3,4,5")
    parser.add_argument("--variants", default="asinh:1,asinh:0", help="kind:column list (column 1 = X2, 0 = X1)")
    args = parser.parse_args(argv)
    variants = [(v.split(":")[0], int(v.split(":")[1])) for v in args.variants.split(",")]
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        cases = family.isotherm_cases(seed=seed, matched=True)
        for index in family._parse_cases(args.cases, len(cases)):
            case = cases[index]
            for kind, column in variants:
                started = time.perf_counter()
                errors = peak_errors(case, kind, column)
                print(f"seed {seed} case {index} ({case.name}, η {case.magnet.eta:.2f}, {case.t_step:.2f} K apart) "
                      f"{kind}:{column}  " + " ".join(f"{e:+.2f}" for e in errors)
                      + f" %  ({time.perf_counter() - started:.0f} s)", flush=True)
                rows += [{"seed": seed, "case": index, "variant": f"{kind}:{column}", "dH_T": dh, "peak_err_pct": e}
                         for dh, e in zip(case.dhs, errors)]
    table = pd.DataFrame(rows)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    table.to_csv(out / "isotherm_transform.csv", index=False)
    print(f"\n|peak error| %, median (worst) over {table.groupby(['seed', 'case']).ngroups} cases")
    summary = table.assign(err=table["peak_err_pct"].abs()).groupby(["variant", "dH_T"])["err"]
    med, worst = summary.median().unstack(), summary.max().unstack()
    for variant in med.index:
        print(f"{variant:10} " + "  ".join(f"{dh:g} T: {med.loc[variant, dh]:5.2f} ({worst.loc[variant, dh]:5.2f})"
                                         for dh in med.columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
