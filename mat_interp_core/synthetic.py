"""Physically exact demo data: mean-field and Bean–Rodbell ferromagnets.

Both models solve the self-consistent Brillouin equation for the reduced
magnetisation σ = M/Ms and know their own magnetic entropy in closed form,
S = N·k_B·[ln Z(x) − x·σ] per kg. The exact |ΔS_M| therefore comes from the
model's entropy, not from the numerical Maxwell integral that
:mod:`mat_interp_core.entropy` computes, so the two can be checked against
each other.

Units: temperature in K, field as μ0H in T, magnetisation in A·m²/kg
(= emu/g), entropy in J/(kg·K).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "K_B",
    "MU_B",
    "DEMO_MASS_MG",
    "MeanFieldMagnet",
    "BeanRodbellMagnet",
    "demo_frame",
    "demo_csv_bytes",
    "truth_frame",
    "quantum_design_dat",
]

K_B = 1.380649e-23  # J/K (exact, SI 2019)
MU_B = 9.2740100783e-24  # J/T
DEMO_MASS_MG = 1.5  # sample mass of the demo data set, in mg

_CHUNK = 50_000  # points solved at once (bounds the memory of the branch search)
_SEARCH_NODES = 96  # nodes of the coarse scan that brackets every stationary point
_BISECTIONS = 60  # halvings of a bracket: far below float64 resolution


# --------------------------------------------------------------------------- Brillouin algebra


def _brillouin(x: np.ndarray, J: float) -> np.ndarray:
    """B_J(x) = d ln Z / dx, with a series near x = 0 where the coth terms cancel."""
    a = (2 * J + 1) / (2 * J)
    c = 1 / (2 * J)
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-2
    xs = np.where(small, x, 0.0)
    series = (a**2 - c**2) * xs / 3 - (a**4 - c**4) * xs**3 / 45 + 2 * (a**6 - c**6) * xs**5 / 945
    xl = np.where(small, 1.0, x)
    direct = a / np.tanh(a * xl) - c / np.tanh(c * xl)
    return np.where(small, series, direct)


def _log_z(x: np.ndarray, J: float) -> np.ndarray:
    """ln Z_J(x) with Z = Σ_m exp(x·m/J) = sinh(a x)/sinh(c x), stable for all x ≥ 0."""
    a = (2 * J + 1) / (2 * J)
    c = 1 / (2 * J)
    x = np.abs(np.asarray(x, dtype=float))
    small = x < 1e-6
    xs = np.where(small, x, 0.0)
    series = np.log(2 * J + 1) + (J + 1) / (6 * J) * xs**2
    xl = np.where(small, 1.0, x)
    # ln sinh(z) = z + ln(1 − e^{−2z}) − ln 2; the ln 2 cancels in the ratio.
    direct = (a - c) * xl + np.log(-np.expm1(-2 * a * xl)) - np.log(-np.expm1(-2 * c * xl))
    return np.where(small, series, direct)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class _BrillouinMagnet:
    """Shared solver: σ = B_J(x) with x·T = a·(σ + b·σ³) + h  (all in kelvin).

    a = 3J·T0/(J+1) is the mean-field exchange, b the Bean–Rodbell
    magneto-volume coefficient (0 for the plain mean-field model) and
    h = g·J·μB·μ0H/k_B the Zeeman energy. Writing u = x·T, every stationary
    point of the free energy lies in [h, h + a(1+b)], which makes a bracketing
    search safe without any starting guess.
    """

    J: float
    g: float
    T0: float
    Ms: float
    b: float

    @property
    def n_per_kg(self) -> float:
        """Number of magnetic moments per kg, from Ms = N·g·J·μB."""
        return self.Ms / (self.g * self.J * MU_B)

    @property
    def s_max(self) -> float:
        """Full magnetic entropy N·k_B·ln(2J+1) in J/(kg·K), reached at T ≫ Tc, H = 0."""
        return self.n_per_kg * K_B * float(np.log(2 * self.J + 1))

    def _a(self) -> float:
        return 3 * self.J * self.T0 / (self.J + 1)

    def _sigma_u(self, T: np.ndarray, mu0H_T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Equilibrium σ ≥ 0 and u = x·T for |H| (sign restored by the caller)."""
        T, H = np.broadcast_arrays(np.asarray(T, dtype=float), np.asarray(mu0H_T, dtype=float))
        if np.any(~np.isfinite(T)) or np.any(T <= 0):
            raise ValueError("temperatures must be finite and > 0 K")
        if np.any(~np.isfinite(H)):
            raise ValueError("fields must be finite")
        shape = T.shape
        t = T.ravel()
        h = self.g * self.J * MU_B * np.abs(H.ravel()) / K_B
        sigma = np.empty_like(t)
        u = np.empty_like(t)
        for lo in range(0, t.size, _CHUNK):
            sl = slice(lo, lo + _CHUNK)
            sigma[sl], u[sl] = self._solve(t[sl], h[sl])
        return sigma.reshape(shape), u.reshape(shape)

    def _residual(self, u: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        s = _brillouin(u / t, self.J)
        return u - self._a() * (s + self.b * s**3) - h

    def _free_energy(self, u: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Free energy per moment / k_B (kelvin) at the state labelled by u."""
        x = u / t
        s = _brillouin(x, self.J)
        a = self._a()
        entropy = _log_z(x, self.J) - x * s
        return -0.5 * a * s**2 - 0.25 * a * self.b * s**4 - t * entropy - h * s

    def _bisect(self, lo: np.ndarray, hi: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Root of the residual in [lo, hi] where it goes from ≤ 0 to ≥ 0."""
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            neg = self._residual(mid, t, h) < 0
            lo = np.where(neg, mid, lo)
            hi = np.where(neg, hi, mid)
        return 0.5 * (lo + hi)

    def _solve(self, t: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = h.copy()
        hi = h + self._a() * (1 + self.b) + 1e-12
        if self.b == 0.0:
            # Mean field: the residual crosses zero upwards exactly once on (h, hi].
            u = self._bisect(lo, hi, t, h)
            return _brillouin(u / t, self.J), u
        # Bean–Rodbell: up to two minima. Scan, bracket the first and the last
        # upward crossing (the only candidates for a minimum), refine both and
        # keep the one with the lower free energy.
        frac = np.linspace(0.0, 1.0, _SEARCH_NODES)
        grid = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
        r = self._residual(grid, t[:, None], h[:, None])
        up = (r[:, :-1] < 0) & (r[:, 1:] >= 0)
        rows = np.arange(t.size)
        has = up.any(axis=1)
        first = np.where(has, np.argmax(up, axis=1), 0)
        last = np.where(has, up.shape[1] - 1 - np.argmax(up[:, ::-1], axis=1), 0)
        cands = []
        for k in (first, last):
            u_k = self._bisect(grid[rows, k], grid[rows, k + 1], t, h)
            cands.append(np.where(has, u_k, lo))  # no crossing: σ = 0 is the only state (h = 0)
        # At h = 0 the unordered state σ = 0 (u = 0) is always stationary and may be
        # the stable one even where an ordered minimum exists (first order, η > 1).
        cands.append(lo)
        f = np.stack([self._free_energy(c, t, h) for c in cands])
        f[2] = np.where(h == 0, f[2], np.inf)
        best = np.argmin(f, axis=0)
        u = np.choose(best, cands)
        return _brillouin(u / t, self.J), u

    # ----------------------------------------------------------------------- public

    def reduced_magnetisation(self, T: np.ndarray, mu0H_T: np.ndarray) -> np.ndarray:
        """σ = M/Ms of the equilibrium state, with the sign of the field (σ ≥ 0 at H = 0)."""
        sigma, _ = self._sigma_u(T, mu0H_T)
        sign = np.where(np.asarray(mu0H_T, dtype=float) < 0, -1.0, 1.0)
        return sigma * sign

    def magnetisation(self, T: np.ndarray, mu0H_T: np.ndarray) -> np.ndarray:
        """M(T, μ0H) in A·m²/kg; T and μ0H broadcast against each other."""
        return self.Ms * self.reduced_magnetisation(T, mu0H_T)

    def entropy(self, T: np.ndarray, mu0H_T: np.ndarray) -> np.ndarray:
        """Magnetic entropy S = N·k_B·[ln Z(x) − x·σ] in J/(kg·K) at the equilibrium state."""
        T_arr = np.asarray(T, dtype=float)
        sigma, u = self._sigma_u(T_arr, mu0H_T)
        x = u / np.broadcast_to(T_arr, u.shape)
        return self.n_per_kg * K_B * (_log_z(x, self.J) - x * sigma)

    def exact_delta_s(self, T: np.ndarray, dh_tesla: float, h0_tesla: float) -> np.ndarray:
        """Exact |ΔS_M| = |S(T, H0+ΔH) − S(T, H0)| in J/(kg·K), from the model's entropy."""
        return np.abs(self.entropy(T, h0_tesla + dh_tesla) - self.entropy(T, h0_tesla))


@dataclass(frozen=True, init=False)
class MeanFieldMagnet(_BrillouinMagnet):
    """Mean-field (Weiss) ferromagnet: second-order transition at Tc.

    Ms is the saturation magnetisation at T = 0 in A·m²/kg; J the total angular
    momentum quantum number and g the Landé factor.
    """

    Tc: float

    def __init__(self, J: float = 3.5, g: float = 2.0, Tc: float = 35.0, Ms: float = 150.0) -> None:
        _check_params(J, g, Tc, Ms)
        object.__setattr__(self, "J", float(J))
        object.__setattr__(self, "g", float(g))
        object.__setattr__(self, "T0", float(Tc))
        object.__setattr__(self, "Tc", float(Tc))
        object.__setattr__(self, "Ms", float(Ms))
        object.__setattr__(self, "b", 0.0)

    def __repr__(self) -> str:
        return f"MeanFieldMagnet(J={self.J}, g={self.g}, Tc={self.Tc}, Ms={self.Ms})"


@dataclass(frozen=True, init=False)
class BeanRodbellMagnet(_BrillouinMagnet):
    """Bean–Rodbell magnet: exchange grows with magnetisation through the volume.

    The reduced equation (Bean & Rodbell 1962; Amaral & Amaral 2004) is
    σ = B_J(y), y = [3J/(J+1)·T0·σ + (9/5)·((2J+1)⁴−1)/(2(J+1))⁴·η·T0·σ³ + gJμB·μ0H/k_B] / T,
    from a free energy whose exchange term −(a/2)σ² − (a·b/4)σ⁴ already has the
    volume minimised out; the entropy is the spin entropy alone.
    η < 1 gives a second-order transition at Tc = T0, sharper than mean field;
    η > 1 a first-order one above T0, where the branch of lowest free energy
    is taken (no hysteresis).
    """

    eta: float

    def __init__(
        self, J: float = 3.5, g: float = 2.0, T0: float = 35.0, Ms: float = 150.0, eta: float = 0.5
    ) -> None:
        _check_params(J, g, T0, Ms)
        if not np.isfinite(eta) or eta < 0:
            raise ValueError(f"eta must be ≥ 0, got {eta!r}")
        # a·b·σ³ must equal (9/5)·((2J+1)⁴−1)/(2(J+1))⁴·η·T0·σ³ with a = 3J·T0/(J+1):
        # this puts the tricritical point at η = 1 exactly.
        b = 9 / 5 * ((2 * J + 1) ** 4 - 1) / (2 * (J + 1)) ** 4 * eta * (J + 1) / (3 * J)
        object.__setattr__(self, "J", float(J))
        object.__setattr__(self, "g", float(g))
        object.__setattr__(self, "T0", float(T0))
        object.__setattr__(self, "Ms", float(Ms))
        object.__setattr__(self, "eta", float(eta))
        object.__setattr__(self, "b", float(b))

    @property
    def Tc(self) -> float:
        """Zero-field ordering temperature: T0 for η ≤ 1, found numerically above for η > 1."""
        if self.eta <= 1:
            return self.T0
        lo, hi = self.T0, 3 * self.T0
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            if self.reduced_magnetisation(mid, 0.0) > 1e-6:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def __repr__(self) -> str:
        return f"BeanRodbellMagnet(J={self.J}, g={self.g}, T0={self.T0}, Ms={self.Ms}, eta={self.eta})"


def _check_params(J: float, g: float, T: float, Ms: float) -> None:
    for name, value in (("J", J), ("g", g), ("Tc/T0", T), ("Ms", Ms)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


# --------------------------------------------------------------------------- frames


def truth_frame(magnet: _BrillouinMagnet, T: Sequence[float], fields_T: Sequence[float]) -> pd.DataFrame:
    """Noise-free long table (T_K, mu0H_T, M_Am2_per_kg) on the product grid T × fields."""
    t = np.asarray(T, dtype=float).ravel()
    h = np.asarray(fields_T, dtype=float).ravel()
    hh, tt = np.meshgrid(h, t, indexing="ij")
    m = magnet.magnetisation(tt, hh)
    return pd.DataFrame({"T_K": tt.ravel(), "mu0H_T": hh.ravel(), "M_Am2_per_kg": m.ravel()})


def demo_frame(
    magnet: _BrillouinMagnet | None = None,
    *,
    fields_T: Sequence[float] = (0.01, 0.1, 0.5, 1, 2, 3, 4, 5),
    temperatures: Sequence[float] | None = None,
    mass_mg: float = DEMO_MASS_MG,
    noise: float = 1e-3,
    jitter_K: float = 0.02,
    seed: int = 0,
) -> pd.DataFrame:
    """What a magnetometer would give: columns "T (K)", "H (Oe)", "moment (emu)".

    One M(T) scan per field; the moment is M[A·m²/kg] × mass[g] (emu/g =
    A·m²/kg), with relative Gaussian noise `noise`. Every scan's temperatures
    jitter by ±`jitter_K` (uniform) around the nominal ones, like a real
    sweep. Defaults: mean-field magnet with Tc = 35 K, 100 temperatures from
    5 K to 2.5·Tc.
    """
    magnet = MeanFieldMagnet() if magnet is None else magnet
    if not mass_mg > 0:
        raise ValueError(f"mass_mg must be > 0, got {mass_mg!r}")
    if temperatures is None:
        temperatures = np.linspace(5.0, 2.5 * magnet.Tc, 100)
    t_nom = np.asarray(temperatures, dtype=float).ravel()
    rng = np.random.default_rng(seed)
    frames = []
    for field in fields_T:
        t = t_nom + rng.uniform(-jitter_K, jitter_K, size=t_nom.size) if jitter_K > 0 else t_nom.copy()
        t = np.clip(t, 1e-3, None)
        m = magnet.magnetisation(t, float(field))
        moment = m * mass_mg * 1e-3 * (1 + noise * rng.standard_normal(t.size))
        frames.append(pd.DataFrame({"T (K)": t, "H (Oe)": float(field) * 1e4, "moment (emu)": moment}))
    return pd.concat(frames, ignore_index=True)


def demo_csv_bytes(magnet: _BrillouinMagnet | None = None, **kwargs) -> bytes:
    """The demo frame as UTF-8 CSV bytes (for a download button or a test upload)."""
    buf = io.StringIO()
    demo_frame(magnet, **kwargs).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- instrument files

# The [Data] columns of an MPMS3 VSM file, in its order; the ones this module fills are named in _QD_FILLED.
_QD_COLUMNS = (
    "Comment", "Time Stamp (sec)", "Temperature (K)", "Magnetic Field (Oe)", "Moment (emu)", "M. Std. Err. (emu)",
    "Transport Action", "Averaging Time (sec)", "Frequency (Hz)", "Peak Amplitude (mm)", "Center Position (mm)",
    "Lockin Signal' (V)", "Lockin Signal' (V)_2", "Range", "M. Quad. Signal (Vmm)", "M. Raw' (V)", "M. Raw'' (V)",
    "Min. Temperature (K)", "Max. Temperature (K)", "Min. Field (Oe)", "Max. Field (Oe)", "Mass (grams)",
    "Motor Lag (deg)", "Pressure (Torr)", "Measure Count", "Measurement Number", "SQUID Status (code)",
    "Motor Status (code)", "Measure Status (code)", "Motor Current (amps)", "Motor Temp. (C)",
    "Temp. Status (code)", "Field Status (code)", "Chamber Status (code)", "Chamber Temp (K)", "Redirection State",
    "Average Temp (K)", "Rotation Angle (deg)", "Rotator state", "DC Moment Fixed Ctr (emu)",
    "DC Moment Err Fixed Ctr (emu)", "DC Moment Free Ctr (emu)", "DC Moment Err Free Ctr (emu)", "DC Fixed Fit",
    "DC Free Fit", "DC Calculated Center (mm)", "DC Calculated Center Err (mm)", "DC Scan Length (mm)",
    "DC Scan Time (s)", "DC Number of Points", "DC Squid Drift", "DC Min V (V)", "DC Max V (V)",
    "DC Scans per Measure", "Map 01", "Map 02", "Map 03", "Map 04", "Map 05", "Map 06",
)


def quantum_design_dat(
    magnet: _BrillouinMagnet | None = None,
    *,
    fields_Oe: Sequence[float] = (100, 1000, 5000, 10000, 20000, 35000, 50000),
    temperatures: Sequence[float] | None = None,
    isotherms: bool = False,
    mass_mg: float | None = DEMO_MASS_MG,
    field_jitter_Oe: float = 1.0,
    remanence_Oe: float = 4.0,
    temperature_jitter_K: float = 0.05,
    noise: float = 1e-3,
    branches: str = "warming",
    empty_moments: int = 3,
    n_points: int = 100,
    seed: int = 0,
) -> bytes:
    """A synthetic magnet measured as an MPMS3 writes it: a ``.dat`` file (CRLF, [Header], [Data], 60 columns).

    M(T) sweeps at `fields_Oe` (or, with `isotherms`, M(H) sweeps at `temperatures`) whose set points are read
    back with uniform jitter (±`field_jitter_Oe`, ±`temperature_jitter_K`) and a remanent offset on the lowest
    field; `branches` is 'warming', 'cooling' or 'both' (a cooling sweep follows each warming one);
    `empty_moments` rows have an empty moment (a failed fit); a comment row opens each sweep. `mass_mg=None`
    writes no SAMPLE_MASS line. For tests and benchmarks of the readers: the project never ships real files.
    """
    magnet = MeanFieldMagnet() if magnet is None else magnet
    rng = np.random.default_rng(seed)
    if temperatures is None:
        temperatures = (np.linspace(5.0, 2.5 * magnet.Tc, n_points) if not isotherms
                        else np.linspace(0.6 * magnet.Tc, 1.6 * magnet.Tc, 11))
    temperatures = np.asarray(temperatures, dtype=float)
    fields = np.asarray(fields_Oe, dtype=float)
    sweeps = []  # (comment, T, H)
    if isotherms:
        h_nom = np.linspace(fields.min(), fields.max(), n_points)
        for t in temperatures:
            h = h_nom + rng.uniform(-field_jitter_Oe, field_jitter_Oe, h_nom.size)
            sweeps.append((f"isotherm at {t:g} K", t + rng.uniform(-temperature_jitter_K, temperature_jitter_K, h.size), h))
    else:
        for i, f in enumerate(fields):
            t = temperatures + rng.uniform(-temperature_jitter_K, temperature_jitter_K, temperatures.size)
            h = f + (remanence_Oe if i == 0 else 0.0) + rng.uniform(-field_jitter_Oe, field_jitter_Oe, t.size)
            sweeps.append((f"M(T) at {f:g} Oe", t, h))
    if branches in ("cooling", "both"):
        # a cooling sweep back over the same set points, read back afresh
        cooled = [(c + " (cooling)", t[::-1] + rng.uniform(-temperature_jitter_K, temperature_jitter_K, t.size),
                   h[::-1] + rng.uniform(-field_jitter_Oe, field_jitter_Oe, h.size)) for c, t, h in sweeps]
        sweeps = cooled if branches == "cooling" else [s for pair in zip(sweeps, cooled) for s in pair]
    mass_g = (mass_mg if mass_mg is not None else DEMO_MASS_MG) * 1e-3
    rows, clock = [], 3.8e9
    n_cols = len(_QD_COLUMNS)
    col = {name: i for i, name in enumerate(_QD_COLUMNS)}
    for comment, t, h in sweeps:
        row = [""] * n_cols
        row[col["Comment"]] = comment
        rows.append(",".join(row))
        m = magnet.magnetisation(np.clip(t, 1e-3, None), h * 1e-4) * mass_g
        m = m * (1 + noise * rng.standard_normal(m.size))
        err = np.abs(m) * noise + 1e-8
        for k in range(t.size):
            clock += 2.5
            row = [""] * n_cols
            row[col["Time Stamp (sec)"]] = f"{clock:.1f}"
            row[col["Temperature (K)"]] = f"{t[k]:.5f}"
            row[col["Magnetic Field (Oe)"]] = f"{h[k]:.4f}"
            row[col["Moment (emu)"]] = f"{m[k]:.8E}"
            row[col["M. Std. Err. (emu)"]] = f"{err[k]:.4E}"
            row[col["Transport Action"]] = "1"
            row[col["Averaging Time (sec)"]] = "2"
            row[col["Frequency (Hz)"]] = "40"
            row[col["Peak Amplitude (mm)"]] = "2"
            row[col["Min. Temperature (K)"]] = f"{t[k] - 0.01:.5f}"
            row[col["Max. Temperature (K)"]] = f"{t[k] + 0.01:.5f}"
            row[col["Min. Field (Oe)"]] = f"{h[k] - 0.3:.4f}"
            row[col["Max. Field (Oe)"]] = f"{h[k] + 0.3:.4f}"
            row[col["Pressure (Torr)"]] = "4.31"
            row[col["Measure Count"]] = "1"
            row[col["Measurement Number"]] = str(len(rows))
            rows.append(",".join(row))
    data_rows = [i for i, r in enumerate(rows) if not r.startswith(("M(T)", "isotherm"))]
    for i in rng.choice(data_rows, size=min(empty_moments, len(data_rows)), replace=False):
        cells = rows[i].split(",")
        cells[col["Moment (emu)"]] = cells[col["M. Std. Err. (emu)"]] = ""
        rows[i] = ",".join(cells)
    header = [
        "[Header]",
        "; Synthetic MPMS3 VSM data file written by mat_interp_core.synthetic",
        "TITLE,mat-interp synthetic magnet",
        "BYAPP,MPMS3,1.0 Build 0",
        "FILEOPENTIME,3800000000.000000,01/01/2026,1:00 PM",
        "INFO,synthetic,SAMPLE_MATERIAL",
        "INFO,,SAMPLE_COMMENT",
        *([f"INFO,{mass_g:.6g},SAMPLE_MASS"] if mass_mg is not None else []),
        "INFO,0,SAMPLE_VOLUME",
        "INFO,0,SAMPLE_MOLECULAR_WEIGHT",
        "INFO,1,SAMPLE_SIZE",
        "DATATYPE,COMMENT,1",
        "DATATYPE,TIME,2",
        "FIELDGROUP,VSM,1,2,3,4,5,6",
        "STARTUPAXIS,X,3",
        "STARTUPAXIS,Y1,5",
        "[Data]",
        ",".join(_QD_COLUMNS),
    ]
    return ("\r\n".join(header + rows) + "\r\n").encode("utf-8")
