"""Set points from read-backs: group an instrument's jittering readings of a stepped axis.

A magnetometer set to 10 000 Oe reads 9 999.6, 10 000.3, …, and the lowest
field often carries a few Oe of remanence. The networks train on the readings,
but everything that works curve by curve (the X2 choice, held-out curves, the
coarse-data |ΔS_M|, baselines along X2, legends) needs the set points behind
them. This is the one place that finds them; every curve-by-curve caller goes
through :func:`group`.

Rule: readings (sorted) are cut at their largest gaps; a grouping is accepted
when every group's spread is at most ``tolerance`` times the gap to its nearest
neighbouring group, and at least half the groups hold two readings or more (a
curve, not one stray reading). Of the accepted groupings the one with the most
set points wins. Exact values that repeat (a cleaned CSV) are their own set
points at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_TOLERANCE", "SetPoints", "SetPointError", "check_tolerance", "group"]

DEFAULT_TOLERANCE = 0.1  # a group's spread may be at most this fraction of its distance to the next group
_MAX_SET_POINTS = 500  # groupings with more set points than this are not tried (a continuous axis)


class SetPointError(ValueError):
    """The readings do not separate into set points at the given tolerance (one sentence)."""


@dataclass(frozen=True)
class SetPoints:
    """Set points (ascending, the median of their readings) and each reading's index into them."""

    values: np.ndarray
    labels: np.ndarray
    tolerance: float
    spread: np.ndarray  # max - min of each group's readings

    @property
    def jittered(self) -> bool:
        """Whether any set point groups readings that differ (read-backs rather than exact values)."""
        return bool(np.any(self.spread > 0))

    def nearest(self, value: float) -> int:
        """Index of the set point closest to `value`."""
        return int(np.argmin(np.abs(self.values - float(value))))

    def mask(self, value: float) -> np.ndarray:
        """Rows of the set point closest to `value`."""
        return self.labels == self.nearest(value)


def check_tolerance(tolerance: float) -> float:
    """The tolerance as a float in (0, 1), else a SetPointError."""
    try:
        tol = float(tolerance)
    except (TypeError, ValueError):
        tol = float("nan")
    if not (np.isfinite(tol) and 0 < tol < 1):
        raise SetPointError(f"the set-point tolerance must be a number between 0 and 1 (a fraction of the spacing); got {tolerance!r}.")
    return tol


def _build(x: np.ndarray, u: np.ndarray, starts: np.ndarray, tol: float) -> SetPoints:
    """SetPoints for groups of the sorted distinct readings `u` beginning at positions `starts`."""
    ends = np.append(starts[1:], u.size) - 1
    idx = np.searchsorted(u, x)
    labels = np.searchsorted(starts, idx, side="right") - 1
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(starts.size + 1))
    xs = x[order]
    values = np.array([float(np.median(xs[a:b])) for a, b in zip(bounds[:-1], bounds[1:])])
    return SetPoints(values, labels, tol, u[ends] - u[starts])


def group(values: np.ndarray, tolerance: float = DEFAULT_TOLERANCE, *, column: str = "X2") -> SetPoints:
    """Group readings into set points (see the module docstring); `column` names the axis in errors."""
    tol = check_tolerance(tolerance)
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0 or not np.isfinite(x).all():
        raise SetPointError(f"column '{column}' needs finite readings to find set points.")
    u, counts = np.unique(x, return_counts=True)
    if u.size == 1 or np.median(counts) >= 2:
        return _build(x, u, np.arange(u.size), tol)  # exact, repeated values: each one is a set point
    gaps = np.diff(u)
    cum = np.concatenate([[0], np.cumsum(counts)])
    by_size = np.argsort(-gaps, kind="stable")
    worst = None
    for n_cuts in range(min(gaps.size, _MAX_SET_POINTS - 1), 0, -1):
        cuts = np.sort(by_size[:n_cuts])
        starts = np.concatenate([[0], cuts + 1])
        ends = np.append(cuts, u.size - 1)
        rows = cum[ends + 1] - cum[starts]
        if 2 * np.count_nonzero(rows >= 2) < rows.size:  # most groups must be curves, not single readings
            continue
        spread = u[ends] - u[starts]
        gap = gaps[cuts]
        left = np.concatenate([[np.inf], gap])
        right = np.concatenate([gap, [np.inf]])
        ratio = spread / np.minimum(left, right)
        if np.all(ratio <= tol):
            return _build(x, u, starts, tol)
        k = int(np.argmax(ratio))
        if worst is None or ratio[k] < worst[0]:
            worst = (float(ratio[k]), float(u[starts[k]]), float(u[ends[k]]), float(min(left[k], right[k])))
    if worst is None:
        raise SetPointError(
            f"column '{column}' has {u.size} distinct readings with no repeated set points; "
            "choose a stepped axis (few fixed values) for it."
        )
    ratio, lo, hi, gap = worst
    raise SetPointError(
        f"column '{column}': the readings from {lo:.6g} to {hi:.6g} spread over {hi - lo:.3g}, which is "
        f"{ratio:.2g} of the {gap:.3g} gap to the next set point, over the set-point tolerance {tol:g}; "
        "raise the tolerance (--set-point-tol, Data page) or check that this axis is stepped."
    )
