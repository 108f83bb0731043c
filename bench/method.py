"""The method's choices measured on a small family of synthetic magnets: X2 transform, calibrated band, suggest.

    nice -n 10 python bench/method.py                      # every case, linear/asinh/cbrt (~15 min on 2 busy cores)
    nice -n 10 python bench/method.py --cases 0,1 --transforms asinh --epochs 300   # a quick look

Each case is an exact magnet (synthetic.MeanFieldMagnet / BeanRodbellMagnet) "measured" with
0.1 % noise in emu (1.5 mg) and Oe at a field layout labs use (decade-spaced low fields from 0 T,
one wide low-field gap, even steps). For each X2 transform the same two configurations
(4x128 and 6x96 ReLU, Adam, lr 2e-3 / 1e-3, `--epochs` without early stop, the refinement's way
of training) are trained on all the data; their mean is the "ensemble". Its |ΔS_M| on the grid
`entropy` picks is compared with the magnet's exact |ΔS_M| at ΔH = 1…5 T (from the lowest field):
peak error, T_peak error, curve RMSE against linear interpolation's. Then the band of
mat_interp_core/uncertainty.py: the first configuration retrained with each interior field held out,
its uncalibrated half-width at the peak, and the ratio |peak error| / half-width whose 90 %
quantile is the band's CALIBRATION; coverage with the module's CALIBRATION is printed too.
Finally "suggest": the top-ranked field and whether it lies in the widest gap (transform coordinate).

Output: the tables on stdout and bench/out/method.csv.
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

from mat_interp_core import dataset, entropy, models, network, simulate, synthetic, training, uncertainty  # noqa: E402
from mat_interp_core.baselines import LinearAlongX2  # noqa: E402

OUT = ROOT / "bench" / "out"
MASS = synthetic.DEMO_MASS_MG
UNITS = entropy.MagnetUnits("emu", "Oe", mass_mg=MASS)
DHS = [1.0, 2.0, 3.0, 4.0, 5.0]

# (label, magnet, fields in T, T step K, T range as multiples of T_C)
CASES = [
    ("BR eta0.3 Tc120 wide-gap", synthetic.BeanRodbellMagnet(J=2.5, T0=120.0, Ms=100.0, eta=0.3),
     (0.05, 0.5, 1, 2, 3, 4, 5), 1.0),
    ("MF Tc35 decades-from-0", synthetic.MeanFieldMagnet(J=3.5, Tc=35.0, Ms=150.0),
     (0.0, 0.01, 0.1, 0.5, 1, 2, 3, 4, 5), 0.5),
    ("BR eta0.6 Tc250 even", synthetic.BeanRodbellMagnet(J=3.5, T0=250.0, Ms=120.0, eta=0.6),
     (0.5, 1, 1.5, 2, 3, 4, 5), 2.0),
    ("BR eta0.5 Tc35 paper-layout", synthetic.BeanRodbellMagnet(J=3.5, T0=35.0, Ms=150.0, eta=0.5),
     (0.01, 0.1, 0.5, 1, 2, 3, 4, 5), 0.5),
    ("MF J0.5 Tc15 wide-gap", synthetic.MeanFieldMagnet(J=0.5, Tc=15.0, Ms=60.0),
     (0.1, 1, 2, 3, 4, 5), 0.25),
]
CONFIGS = [dict(layers=4, nodes=128, lr=2e-3, solver="adam"), dict(layers=6, nodes=96, lr=1e-3, solver="adam")]


def case_data(k: int, seed: int = 0):
    label, magnet, fields, step = CASES[k]
    tc = magnet.Tc
    temps = np.arange(round(0.6 * tc), round(1.5 * tc) + 1e-9, step)
    frame = synthetic.demo_frame(magnet, fields_T=fields, temperatures=temps, mass_mg=MASS, noise=1e-3, seed=seed)
    return label, magnet, dataset.validate(frame, "T (K)", "H (Oe)", "moment (emu)")


def exact(magnet, t: np.ndarray, dh: float, h0: float) -> np.ndarray:
    return magnet.exact_delta_s(t, dh, h0)


def run_case(k: int, transforms: list[str], epochs: int, folds: bool) -> list[dict]:
    label, magnet, data = case_data(k)
    x, y = data.arrays()
    x1, x2 = x[:, 0], x[:, 1]
    h0 = float(entropy.to_tesla(data.x2_values[0], "Oe"))
    dhs = [d for d in DHS if h0 + d <= float(entropy.to_tesla(data.x2_values[-1], "Oe")) + 1e-9]
    batch = 128 if len(x) < 1024 else 256
    lin = entropy.simulated_delta_s(LinearAlongX2().fit(x1, x2, y), x1, x2, UNITS, dh_tesla=dhs)
    rows = []

    def scores(sim, dh):
        part = sim.curves[sim.curves.dH_T == dh].sort_values("T_K")
        t, ds = part.T_K.to_numpy(), part.dS_J_per_kgK.to_numpy()
        ex = exact(magnet, t, dh, h0)
        tf = np.arange(t[0], t[-1], 0.01)
        exf = exact(magnet, tf, dh, h0)
        i = int(np.argmax(ds))
        return dict(peak=ds[i], T_peak=t[i], exact_peak=exf.max(), peak_err_pct=100 * (ds[i] / exf.max() - 1),
                    dT_peak=t[i] - tf[np.argmax(exf)], rmse=float(np.sqrt(np.mean((ds - ex) ** 2))))

    for dh in dhs:
        rows.append(dict(case=label, method="linear", dH_T=dh, **scores(lin, dh)))
    for kind in transforms:
        started = time.perf_counter()
        members = []
        for j, cfg in enumerate(CONFIGS):
            params = dict(cfg, batch=batch, x2_transform=kind)
            net, _, mean, std = training.train_config(data, params, epochs=epochs, patience=epochs, seed=j)
            members.append(models.TrainedModel(j, 0.0, network.with_target_scaling(net, mean, std)))
        ens = simulate.Ensemble(members)
        sim = entropy.simulated_delta_s(ens, x1, x2, UNITS, dh_tesla=dhs, band=False)
        cal = None
        if folds:
            params = dict(CONFIGS[0], batch=batch, x2_transform=kind)
            fm = dict(zip(uncertainty.fold_fields(data.x2_values),
                          uncertainty.train_folds(data, params, epochs=epochs, seed=0, t_fold=False)))
            cal = uncertainty.calibrate(members[0], fm, x1, x2, UNITS, t_axis=sim.t_axis, transform=kind)
            raw = uncertainty.band(cal, dhs, factor=1.0)
            sug = uncertainty.suggestions(cal, dhs, factor=1.0)
            widest = int(np.argmax(np.diff(cal.u)))
            top_in_widest = bool(len(sug)) and cal.fields_x2[widest] < sug.x2.iloc[0] < cal.fields_x2[widest + 1]
        seconds = time.perf_counter() - started
        for dh in dhs:
            s = scores(sim, dh)
            row = dict(case=label, method=f"ensemble {kind}", dH_T=dh, seconds=seconds, **s)
            if cal is not None:
                b = raw[(raw.dH_T == dh)]
                half = float(np.interp(s["T_peak"], b.T_K, b.dS_band))
                row.update(band_raw=half, ratio=abs(s["peak"] - s["exact_peak"]) / half if half > 0 else np.inf,
                           top_in_widest=top_in_widest, suggest=float(sug.x2.iloc[0]) / 1e4 if len(sug) else np.nan)
            rows.append(row)
        print(f"  {label}: {kind} done in {seconds:.0f} s", flush=True)
    return rows


def report(res: pd.DataFrame) -> str:
    lines = []
    lin = res[res.method == "linear"].set_index(["case", "dH_T"])["rmse"]
    for method, part in res.groupby("method", sort=False):
        rel = part.set_index(["case", "dH_T"])["rmse"] / lin
        ape = part.peak_err_pct.abs()
        lines.append(f"{method:18s} |peak err| median {ape.median():5.2f} %, worst {ape.max():5.2f} %; "
                     f"|dT_peak| worst {part.dT_peak.abs().max():.2f} K; RMSE/linear median {rel.median():.2f}, "
                     f"worst {rel.max():.2f}")
    lines.append("")
    lines.append("per case, |peak err| % at ΔH = 1..5 T:")
    for (case, method), part in res.groupby(["case", "method"], sort=False):
        lines.append(f"  {case:28s} {method:18s} " + " ".join(f"{v:+5.1f}" for v in part.peak_err_pct))
    if "ratio" in res:
        lines.append("")
        for method, part in res.dropna(subset=["ratio"]).groupby("method", sort=False):
            q = float(np.quantile(part.ratio, uncertainty.COVERAGE))
            cov = float(np.mean(part.ratio <= uncertainty.CALIBRATION))
            width = 100 * uncertainty.CALIBRATION * part.band_raw / part.peak
            top = part.groupby("case").top_in_widest.first()
            lines.append(f"{method:18s} band: 90 % quantile of |err|/raw half-width {q:.2f} (CALIBRATION "
                         f"{uncertainty.CALIBRATION}: coverage {cov:.0%}, half-width median {width.median():.1f} %, "
                         f"worst {width.max():.1f} % of the peak); suggest's first in the widest gap: "
                         f"{int(top.sum())}/{len(top)} cases")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(str(i) for i in range(len(CASES))))
    ap.add_argument("--transforms", default="linear,asinh,cbrt")
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument("--no-band", action="store_true", help="skip the held-out folds")
    ap.add_argument("--report", metavar="CSV")
    args = ap.parse_args(argv)
    if args.report:
        print(report(pd.read_csv(args.report)))
        return 0
    network.configure_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    started = time.perf_counter()
    for k in (int(c) for c in args.cases.split(",")):
        rows += run_case(k, args.transforms.split(","), args.epochs, not args.no_band)
        pd.DataFrame(rows).to_csv(OUT / "method.csv", index=False)
    res = pd.DataFrame(rows)
    print(f"\n$ python bench/method.py {' '.join(argv or sys.argv[1:])}   ({time.perf_counter() - started:.0f} s)")
    print(report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
