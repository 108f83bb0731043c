"""Default simulation grids from the measured data, shared by the app's Simulate page and the CLI.

The defaults resolve the measurement five times finer than it was taken: an X1 step of 1/5 of the median
measured spacing and an X2 step of 1/5 of the smallest gap between measured curves.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from mat_interp_core.dataset import TrainingData


def nice(value: float) -> str:
    """A short text for a number typed into an axis field."""
    return f"{value:.10g}"


def x1_spacing(data: TrainingData) -> float:
    """Median spacing of the measured X1 values along each X2 curve."""
    frame = data.frame
    steps = frame.groupby(data.x2_name, sort=False)[data.x1_name].apply(
        lambda s: np.diff(np.sort(s.to_numpy()))
    )
    diffs = np.concatenate([d for d in steps if len(d)]) if len(steps) else np.array([])
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        span = float(np.ptp(frame[data.x1_name]))
        return span / 100 if span > 0 else 1.0
    return float(np.median(diffs))


def even_axis(lo: float, hi: float, target_step: float) -> tuple[np.ndarray, float]:
    """lo..hi (both included) with the step nearest to `target_step` that divides the span."""
    if not hi > lo or not target_step > 0:
        return np.array([lo]), 0.0
    n = max(1, math.ceil((hi - lo) / target_step - 1e-9))
    step = (hi - lo) / n
    axis = lo + np.arange(n + 1) * step
    axis[-1] = hi
    return axis, step


def axis_text(lo: float, hi: float, step: float) -> str:
    return f"{nice(lo)}:{nice(hi)}:{nice(step)}" if step > 0 else nice(lo)


def _nice_divisor(span: float, target: float) -> float | None:
    """The largest 1-2-2.5-5 x 10^k step <= target (and >= target/4) that divides `span` exactly."""
    if not span > 0 or not target > 0:
        return None
    top = math.floor(math.log10(target))
    for e in range(top, top - 3, -1):
        for m in (5.0, 2.5, 2.0, 1.0):
            step = m * 10.0**e
            if step > target * (1 + 1e-12) or step < target / 4:
                continue
            n = span / step
            if abs(n - round(n)) <= 1e-9 * max(1.0, n):
                return step
    return None


def default_axes(data: TrainingData) -> tuple[str, str]:
    """Simulate defaults: X1 step 1/5 of the median measured spacing, X2 step 1/5 of the smallest gap.

    X1 is rounded to two significant digits of its step; X2 keeps its measured ends
    exactly (the top field matters for ΔH), with a round step when one divides the span.
    """
    x1 = data.frame[data.x1_name]
    lo1, hi1 = float(x1.min()), float(x1.max())
    step1 = float(f"{x1_spacing(data) / 5:.2g}")
    digits = max(0, 1 - math.floor(math.log10(step1))) if step1 > 0 else 0
    text1 = axis_text(round(lo1, digits), round(hi1, digits), step1) if step1 > 0 else nice(lo1)
    x2v = data.x2_values
    lo2, hi2 = float(x2v[0]), float(x2v[-1])
    gap = float(np.min(np.diff(x2v))) if x2v.size > 1 else 0.0
    step2 = _nice_divisor(hi2 - lo2, gap / 5)
    if step2 is None:
        _, step2 = even_axis(lo2, hi2, gap / 5)
    return text1, axis_text(lo2, hi2, step2)


def nearest(values: Iterable[float], axis: np.ndarray) -> list[float]:
    """Grid values nearest to the requested ones (no repeats, in order)."""
    out: list[float] = []
    axis = np.asarray(axis, dtype=float)
    for v in values:
        g = float(axis[int(np.argmin(np.abs(axis - v)))])
        if g not in out:
            out.append(g)
    return out


def outside_measured(data: TrainingData, x1_axis: np.ndarray, x2_axis: np.ndarray) -> list[str]:
    """One sentence per axis of the grid that leaves the measured range (the model extrapolates there)."""
    out = []
    x1 = data.frame[data.x1_name]
    for name, axis, lo, hi in ((data.x1_name, x1_axis, float(x1.min()), float(x1.max())),
                               (data.x2_name, x2_axis, float(data.x2_values[0]), float(data.x2_values[-1]))):
        axis = np.asarray(axis, dtype=float)
        if axis.size == 0:
            continue
        # Half a grid step of slack: the defaults round the measured ends to the step's digits.
        tol = 0.5 * float(np.min(np.diff(np.unique(axis)))) if np.unique(axis).size > 1 else 0.0
        tol = max(tol, 1e-9 * max(1.0, abs(lo), abs(hi)))
        if axis.min() < lo - tol or axis.max() > hi + tol:
            out.append(f"{name} {axis.min():g} … {axis.max():g} leaves the measured {lo:g} … {hi:g}")
    return out
