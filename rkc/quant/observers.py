"""Observers: the float range of one tensor over a calibration dataset.

Every observer sees the tensor's values batch by batch (`update`) and answers a range
`(lo, hi)` with `lo <= 0 <= hi` and `hi - lo >= MIN_WIDTH`: a quantized range must hold
zero exactly and have a non-zero scale. Ranges are asymmetric, as the NPU's activations
are (int8 with a zero point, scale = (hi - lo) / 255).

  * `MinMaxObserver`: the smallest and largest value seen (rknn-toolkit2's `normal`).
  * `PercentileObserver`: clips (100 - p) % of the values at each end.
  * `KLObserver`: TensorRT's entropy calibration, asymmetric (`kl_divergence`).
  * `MSEObserver`: least expected squared error of 8-bit quantization (`mmse`).

The histogram observers need two passes over the dataset: pass 1 finds min/max, pass 2
fills a histogram with fixed bins over [min(lo, 0), max(hi, 0)]. The caller runs pass 1
with `update`, calls `start_second_pass()`, then runs pass 2 with `update` again when
`needs_second_pass` is true. Memory per observer is O(bins), never O(data).

Exact zeros (ReLU's spike, padding) quantize without error whatever the range, so KL and
MSE count them apart and choose the range from the other values.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from rkc.errors import RkcError

MIN_WIDTH = 1e-6
"""Smallest range width: an all-zero tensor gets [0, MIN_WIDTH]."""

LEVELS = 256
"""Quantization levels of an 8-bit tensor (255 steps between lo and hi)."""


def with_zero(lo: float, hi: float) -> tuple[float, float]:
    """`[lo, hi]` widened to contain 0 and to be at least MIN_WIDTH wide."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < MIN_WIDTH:
        hi = lo + MIN_WIDTH
    return lo, hi


class Observer:
    """Running min / max; base of every observer."""

    needs_second_pass: ClassVar[bool] = False

    def __init__(self) -> None:
        self.lo = math.inf
        self.hi = -math.inf
        self.count = 0
        self.nonfinite = False

    @property
    def observed(self) -> bool:
        """Whether any finite value was seen."""
        return self.lo <= self.hi

    def update(self, x: np.ndarray) -> None:
        """Take one batch of values (any shape)."""
        self._update_minmax(np.asarray(x))

    def _update_minmax(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        lo, hi = x.min(), x.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            self.nonfinite = True
            x = x[np.isfinite(x)]
            if x.size == 0:
                return
            lo, hi = x.min(), x.max()
        self.lo, self.hi = min(self.lo, float(lo)), max(self.hi, float(hi))
        self.count += x.size

    def start_second_pass(self) -> None:
        """Pass 1 is over (nothing to do for single-pass observers)."""

    def range(self) -> tuple[float, float]:
        """The calibrated range, containing 0."""
        if not self.observed:
            return with_zero(0.0, 0.0)
        return with_zero(self.lo, self.hi)


class MinMaxObserver(Observer):
    """The whole observed range."""


class HistogramObserver(Observer):
    """Pass 1: min / max. Pass 2: a histogram with `bins` equal bins over the pass-1
    range widened to contain 0, plus the count of exact zeros."""

    needs_second_pass: ClassVar[bool] = True

    def __init__(self, bins: int = 2048) -> None:
        super().__init__()
        self.bins = bins
        self.hist: np.ndarray | None = None
        self.zeros = 0
        self.edges: np.ndarray | None = None
        self._origin = np.float32(0)
        self._scale = np.float32(0)

    def start_second_pass(self) -> None:
        if not self.observed:
            return
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        if hi <= lo:  # all zeros
            return
        self.edges = np.linspace(lo, hi, self.bins + 1)
        self.hist = np.zeros(self.bins, dtype=np.int64)
        self._origin = np.float32(lo)
        self._scale = np.float32(self.bins / (hi - lo))

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if self.hist is None:
            if self.edges is None:
                self._update_minmax(x)
            return
        x = x.astype(np.float32, copy=False).ravel()
        if self.nonfinite:
            x = x[np.isfinite(x)]
        index = ((x - self._origin) * self._scale).astype(np.intp)
        np.clip(index, 0, self.bins - 1, out=index)
        self.hist += np.bincount(index, minlength=self.bins)
        self.zeros += int(np.count_nonzero(x == 0))

    def _zero_bin(self) -> int:
        """The bin that holds exact zeros (same arithmetic as `update`)."""
        index = int(((np.float32(0) - self._origin) * self._scale).astype(np.intp))
        return min(max(index, 0), self.bins - 1)

    def nonzero_hist(self) -> np.ndarray:
        """The histogram without the exact zeros, as float64."""
        assert self.hist is not None
        hist = self.hist.astype(np.float64)
        hist[self._zero_bin()] -= self.zeros
        return hist

    def zero_position(self) -> float:
        """Where 0 lies, in bins from the lower edge."""
        assert self.edges is not None
        return -self.edges[0] / (self.edges[-1] - self.edges[0]) * self.bins

    def range(self) -> tuple[float, float]:
        if self.hist is None or self.hist.sum() == 0:
            return super().range()
        return with_zero(*self._choose())

    def _choose(self) -> tuple[float, float]:
        raise NotImplementedError


class PercentileObserver(HistogramObserver):
    """Clips `(100 - percentile)` % of the values at each end (linear within a bin)."""

    def __init__(self, percentile: float = 99.99, bins: int = 2048) -> None:
        if not 50 < percentile <= 100:
            raise RkcError(f"percentile must be in (50, 100], got {percentile}")
        super().__init__(bins)
        self.percentile = percentile

    def _choose(self) -> tuple[float, float]:
        assert self.hist is not None and self.edges is not None
        cdf = np.cumsum(self.hist, dtype=np.float64)
        tail = (100.0 - self.percentile) / 100.0 * cdf[-1]
        return self._quantile(cdf, tail), self._quantile(cdf, cdf[-1] - tail)

    def _quantile(self, cdf: np.ndarray, rank: float) -> float:
        assert self.hist is not None and self.edges is not None
        if rank <= 0:
            return float(self.edges[0])
        if rank >= cdf[-1]:
            return float(self.edges[-1])
        k = int(np.searchsorted(cdf, rank, side="left"))
        before = cdf[k - 1] if k else 0.0
        fraction = (rank - before) / self.hist[k]
        return float(self.edges[k] + fraction * (self.edges[k + 1] - self.edges[k]))


class KLObserver(HistogramObserver):
    """Entropy calibration (TensorRT, MXNet's `_get_optimal_threshold`), asymmetric.

    A candidate range is a bin interval [i, j) containing 0 and at least `levels` bins
    wide. Its reference distribution P is the histogram over [i, j) with the clipped
    mass added to the end bins; Q quantizes the unclipped histogram to `levels` equal
    groups, each group's mass spread evenly over the bins where P is non-zero. The range
    minimises KL(P || Q). The two ends are searched by coordinate descent (upper end,
    then lower end, twice on a grid of `grid` candidates, then bin by bin around the
    best), every set of candidates evaluated at once.

    Guards (our additions): a candidate clips at most `max_clipped` of the non-zero
    values at each end. Without it, data far from zero (say all in [3, 7], so the range
    [0, 7] has an empty stretch) make KL pick a degenerate range: clipping everything into
    one edge bin gives P = Q. With fewer values than bins the histogram says too little
    and the range is the min / max."""

    def __init__(self, bins: int = 4096, levels: int = LEVELS - 1, grid: int = 64,
                 max_clipped: float = 0.01) -> None:
        if bins < levels:
            raise ValueError("KLObserver needs at least as many bins as levels")
        super().__init__(bins)
        self.levels = levels
        self.grid = grid
        self.max_clipped = max_clipped

    def _choose(self) -> tuple[float, float]:
        assert self.edges is not None
        hist = self.nonzero_hist()
        total = hist.sum()
        if total < self.bins:
            return self.lo, self.hi
        cum = np.concatenate([[0.0], np.cumsum(hist)])
        budget = self.max_clipped * total
        zero = self.zero_position()
        max_start = min(math.floor(zero), int(np.searchsorted(cum, budget, "right")) - 1)
        min_stop = max(math.ceil(zero), int(np.searchsorted(cum, total - budget, "left")))
        i, j = search_interval(self.bins, max_start, min_stop, self.levels, self.grid,
                               lambda starts, stops: kl_divergences(hist, starts, stops,
                                                                    self.levels))
        return float(self.edges[i]), float(self.edges[j])


class MSEObserver(HistogramObserver):
    """The range that minimises the expected squared error of quantizing to 256 levels:
    clipping error (values outside, at their bin centre) plus rounding error (step**2 / 12
    per value inside, exact zeros excluded), over every pair of bin edges around 0
    (at most `grid` candidates per end)."""

    def __init__(self, bins: int = 2048, grid: int = 512) -> None:
        super().__init__(bins)
        self.grid = grid

    def _choose(self) -> tuple[float, float]:
        assert self.edges is not None
        hist, edges = self.nonzero_hist(), self.edges
        zero = self.zero_position()
        lows = _grid(0, math.floor(zero), self.grid)
        highs = _grid(math.ceil(zero), self.bins, self.grid)
        centres = (edges[:-1] + edges[1:]) / 2
        s0, s1, s2 = (np.concatenate([[0.0], np.cumsum(hist * centres**p)]) for p in (0, 1, 2))
        a, b = edges[lows], edges[highs]
        below = s2[lows] - 2 * a * s1[lows] + a * a * s0[lows]
        above = (s2[-1] - s2[highs]) - 2 * b * (s1[-1] - s1[highs]) \
            + b * b * (s0[-1] - s0[highs])
        inside = s0[highs][None, :] - s0[lows][:, None]
        step = (b[None, :] - a[:, None]) / (LEVELS - 1)
        error = (np.maximum(below, 0)[:, None] + np.maximum(above, 0)[None, :]
                 + inside * step * step / 12)
        k = int(np.argmin(error))
        return float(a[k // len(b)]), float(b[k % len(b)])


def _grid(start: int, stop: int, count: int) -> np.ndarray:
    """At most `count` distinct integers spread evenly over [start, stop], both ends in."""
    if stop <= start:
        return np.array([start], dtype=np.intp)
    return np.unique(np.linspace(start, stop, min(count, stop - start + 1)).round()
                     .astype(np.intp))


def search_interval(bins: int, max_start: int, min_stop: int, width: int, grid: int,
                    cost) -> tuple[int, int]:
    """Coordinate descent for the bin interval [i, j) with 0 <= i <= max_start,
    min_stop <= j <= bins and j - i >= width, minimising `cost(starts, stops) -> array`."""
    i, j = 0, bins

    def best_stop(i: int, stops: np.ndarray) -> int:
        return int(stops[np.argmin(cost(np.full_like(stops, i), stops))])

    def best_start(j: int, starts: np.ndarray) -> int:
        return int(starts[np.argmin(cost(starts, np.full_like(starts, j)))])

    for _ in range(2):
        j = best_stop(i, _grid(max(i + width, min_stop), bins, grid))
        i = best_start(j, _grid(0, min(j - width, max_start), grid))
    spacing = -(-bins // grid)
    j = best_stop(i, np.arange(max(i + width, min_stop, j - spacing),
                               min(bins, j + spacing) + 1))
    i = best_start(j, np.arange(max(0, i - spacing), min(j - width, max_start, i + spacing) + 1))
    return i, j


def kl_divergences(hist: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                   levels: int, eps: float = 1e-4) -> np.ndarray:
    """KL(P || Q) of every candidate bin interval [starts[c], stops[c]) (see KLObserver),
    from prefix sums: O(levels) per candidate, not O(bins). A group whose unclipped mass
    is zero while P is not gets q = `eps` (in counts) instead of MXNet's smoothing."""
    starts, stops = np.asarray(starts, dtype=np.intp), np.asarray(stops, dtype=np.intp)
    lengths = stops - starts
    total = hist.sum()
    cum = np.concatenate([[0.0], np.cumsum(hist)])
    cum_nz = np.concatenate([[0], np.cumsum(hist > 0)])
    cum_plogp = np.concatenate([[0.0], np.cumsum(_xlogx(hist))])
    left = cum[starts]
    right = total - cum[stops]
    first, last = hist[starts], hist[stops - 1]
    plogp = (cum_plogp[stops] - cum_plogp[starts] - _xlogx(first) - _xlogx(last)
             + _xlogx(first + left) + _xlogx(last + right))
    g = np.arange(levels + 1)
    bounds = starts[:, None] + (g[None, :] * lengths[:, None] + levels - 1) // levels
    mass = np.diff(cum[bounds], axis=1)
    nonzero = np.diff(cum_nz[bounds], axis=1).astype(np.float64)
    nonzero[:, 0] += (first == 0) & (left > 0)
    nonzero[:, -1] += (last == 0) & (right > 0)
    p_mass = mass.copy()
    p_mass[:, 0] += left
    p_mass[:, -1] += right
    q = np.where(mass > 0, mass / np.maximum(nonzero, 1), eps)
    q_total = np.sum(np.where(mass > 0, mass, eps * nonzero), axis=1)
    p_logq = np.sum(np.where(p_mass > 0, p_mass * np.log(q), 0.0), axis=1)
    return (plogp - p_logq) / total - np.log(total) + np.log(q_total)


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x * log(x) with 0 * log(0) = 0."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


ALGORITHMS = {
    "minmax": MinMaxObserver,
    "percentile": PercentileObserver,
    "kl": KLObserver,
    "mse": MSEObserver,
}
ALIASES = {"normal": "minmax", "kl_divergence": "kl", "mmse": "mse"}
"""rknn-toolkit2's names for the same algorithms."""


def make_observer(algorithm: str) -> Observer:
    """A fresh observer for `algorithm` ("minmax", "percentile", "kl", "mse", or
    rknn-toolkit2's "normal", "kl_divergence", "mmse")."""
    name = ALIASES.get(algorithm, algorithm)
    if name not in ALGORITHMS:
        raise RkcError(f"unknown calibration algorithm '{algorithm}' (choose from "
                       f"{', '.join(ALGORITHMS)})")
    return ALGORITHMS[name]()
