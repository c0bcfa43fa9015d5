"""Statistics for comparing a multitask (MTL) row with a single-task (STL) row of a results table.

Pure functions (numpy + scipy only, no printing). Each returns a small frozen dataclass; small or
degenerate inputs (one seed, zero variance, no data, non-finite values) never raise: the result has
no interval and a ``note`` that says why, so a report can show the number without pretending it is
significant. The only errors raised are programming errors: paired samples of different lengths and
a confidence level outside (0, 1).

Which test for which data:

* ``paired_t`` - per-seed differences MTL - STL trained with the same seed (the seed fixes the
  initialisation and data order, so pairing removes that shared noise).
* ``welch`` - two unpaired groups of seeds; kept as the alternative when seeds do not pair.
* ``mcnemar`` - two classifiers scored on the same test images (per-image right/wrong).
* ``paired_bootstrap`` - two regressors scored on the same test images (per-image absolute error).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = ["Interval", "McNemar", "paired_t", "welch", "significant", "mcnemar", "paired_bootstrap"]

# A spread this small relative to the values is floating-point noise from subtracting equal numbers,
# not variation: an interval built on it would be absurdly narrow and falsely "significant".
_ZERO_SPREAD_RTOL = 1e-9
# The bootstrap draws at most this many indices at a time, so n=10k x reps=2000 stays ~30 MB.
_BOOT_CHUNK = 4_000_000
# McNemar: below this many discordant pairs the chi-square approximation is poor; use the exact test.
_MCNEMAR_EXACT_BELOW = 25


@dataclass(frozen=True)
class Interval:
    """A mean (difference) with a two-sided confidence interval, or ``low``/``high`` None and a
    ``note`` saying why there is no interval. ``n`` is the number of pairs (paired methods) or the
    size of the first sample (``welch``, whose second sample size is ``n_other``)."""
    mean: float
    n: int
    low: float | None
    high: float | None
    method: str
    note: str = ""
    n_other: int | None = None


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of two classifiers on the same images. ``b``: a right and b wrong; ``c``: a
    wrong and b right (only these discordant images carry information). ``diff`` is accuracy
    a - b in percentage points (NaN when ``n`` is 0)."""
    n: int
    b: int
    c: int
    diff: float
    p_value: float
    method: str
    note: str = ""


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level!r}")
    return level


def _as_float(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else math.nan


def _zero_spread(x: np.ndarray) -> bool:
    """True if all values are equal up to floating-point noise (sd would be ~0)."""
    if x.size < 2:
        return True
    scale = float(np.max(np.abs(x)))
    return float(np.ptp(x)) <= _ZERO_SPREAD_RTOL * scale


def _no_interval(d: np.ndarray) -> str | None:
    """Why paired differences ``d`` support no interval (no data, non-finite, one pair, no spread), or None."""
    if d.size == 0:
        return "n=0, no data"
    if not np.all(np.isfinite(d)):
        return "non-finite values, no interval"
    if d.size == 1:
        return "n=1, no interval"
    if _zero_spread(d):
        return "zero variance, no interval"
    return None


def paired_t(diffs: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of per-seed differences MTL - STL (same seed on both sides) with a t(n-1) interval.

    Pairing by seed removes the seed-to-seed noise both runs share, so this is tighter than Welch
    when seeds match. Equals ``scipy.stats.ttest_rel(mtl, stl).confidence_interval(level)``.
    """
    level = _check_level(level)
    d = _as_float(diffs)
    n = int(d.size)
    method = "paired t"
    mean = _mean(d)
    why = _no_interval(d)
    if why:
        return Interval(mean, n, None, None, method, why)
    se = float(np.std(d, ddof=1)) / math.sqrt(n)
    q = float(stats.t.ppf((1.0 + level) / 2.0, n - 1))
    return Interval(mean, n, mean - q * se, mean + q * se, method)


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
    """Welch t interval for mean(a) - mean(b) of two unpaired samples (variances not assumed equal).

    The alternative to ``paired_t`` when seeds do not pair up. Equals
    ``scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(level)``. ``n`` = len(a),
    ``n_other`` = len(b).
    """
    level = _check_level(level)
    x, y = _as_float(a), _as_float(b)
    na, nb = int(x.size), int(y.size)
    method = "Welch t"
    mean = _mean(x) - _mean(y) if na and nb else math.nan

    def none(note: str) -> Interval:
        return Interval(mean, na, None, None, method, note, nb)

    if na == 0 or nb == 0:
        return none(f"n={na} vs n={nb}, no data")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return none("non-finite values, no interval")
    if na < 2 or nb < 2:
        return none(f"n={na} vs n={nb}, fewer than 2 on a side, no interval")
    if _zero_spread(x) and _zero_spread(y):
        return none("zero variance, no interval")
    vn1 = float(np.var(x, ddof=1)) / na
    vn2 = float(np.var(y, ddof=1)) / nb
    df = (vn1 + vn2) ** 2 / (vn1 ** 2 / (na - 1) + vn2 ** 2 / (nb - 1))
    se = math.sqrt(vn1 + vn2)
    q = float(stats.t.ppf((1.0 + level) / 2.0, df))
    return Interval(mean, na, mean - q * se, mean + q * se, method, "", nb)


def significant(iv: Interval | None) -> int:
    """+1 if the interval lies wholly above 0, -1 if wholly below, 0 if it covers 0 or is absent.

    An interval that is missing (n=1, zero variance, ...) is never significant."""
    if iv is None or iv.low is None or iv.high is None:
        return 0
    if iv.low > 0:
        return 1
    if iv.high < 0:
        return -1
    return 0


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
    """McNemar's test for two classifiers on the SAME test images, from per-image correctness.

    Pairing by image makes this far more sensitive than comparing two accuracies as independent
    proportions. Exact two-sided binomial test on the discordant counts when b + c < 25, else the
    continuity-corrected chi-square (|b - c| - 1)^2 / (b + c) with 1 dof; no discordant images -> p=1.
    Raises ValueError if the two sequences differ in length (they cannot be the same images).
    """
    x = np.asarray(correct_a, dtype=bool).reshape(-1)
    y = np.asarray(correct_b, dtype=bool).reshape(-1)
    if x.size != y.size:
        raise ValueError(f"mcnemar needs per-image results on the same images: {x.size} != {y.size}")
    n = int(x.size)
    b = int(np.count_nonzero(x & ~y))
    c = int(np.count_nonzero(~x & y))
    diff = 100.0 * (b - c) / n if n else math.nan
    m = b + c
    if m == 0:
        note = "no images" if n == 0 else "no discordant images"
        return McNemar(n, b, c, diff, 1.0, "exact binomial", note)
    if m < _MCNEMAR_EXACT_BELOW:
        p = float(stats.binomtest(b, m, 0.5).pvalue)
        return McNemar(n, b, c, diff, min(p, 1.0), "exact binomial")
    chi2 = (abs(b - c) - 1) ** 2 / m
    p = float(stats.chi2.sf(chi2, 1))
    return McNemar(n, b, c, diff, p, "chi-square (continuity corrected)")


def paired_bootstrap(err_a: Sequence[float], err_b: Sequence[float], reps: int = 2000,
                     seed: int = 0, level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of mean(err_a - err_b) resampling test images with replacement.

    For per-image errors of two models on the same images (e.g. age absolute error): the images are
    the source of sampling noise, and per-image errors are skewed, so resampling avoids a normality
    assumption. Deterministic for a given ``seed`` (numpy ``default_rng``). ``n`` = number of images.
    Raises ValueError if the two sequences differ in length (they cannot be the same images).
    """
    level = _check_level(level)
    x, y = _as_float(err_a), _as_float(err_b)
    if x.size != y.size:
        raise ValueError(f"paired_bootstrap needs errors on the same images: {x.size} != {y.size}")
    d = x - y
    n = int(d.size)
    method = "paired bootstrap (images)"
    mean = _mean(d)
    why = _no_interval(d)
    if why:
        return Interval(mean, n, None, None, method, why)
    reps = int(reps)
    if reps < 2:
        return Interval(mean, n, None, None, method, f"reps={reps}, no interval")
    rng = np.random.default_rng(seed)
    boot = np.empty(reps, dtype=float)
    rows = max(1, _BOOT_CHUNK // n)
    for start in range(0, reps, rows):
        stop = min(reps, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[start:stop] = d[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return Interval(mean, n, float(low), float(high), method)
