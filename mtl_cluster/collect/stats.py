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
* ``mcnemar`` - two classifiers scored on the same test images (per-image right/wrong), ONE seed pair.
* ``paired_bootstrap`` - two regressors scored on the same test images (per-image absolute error), ONE
  seed pair.
* ``crossed_bootstrap`` - per-image differences of several seed pairs on the same test images. Seeds, not
  images, are the unit of replication: pooling k seeds' predictions into ``mcnemar`` or
  ``paired_bootstrap`` as k x n independent pairs overstates certainty (k identical seeds would narrow
  the interval by sqrt(k)). Resampling seeds and images together does not.
* ``holm`` - step-down adjustment of the p-values of a whole table (many cells tested at once).
* ``paired_power``, ``min_detectable_effect``, ``seeds_needed`` - what the paired t over seeds can
  detect, so a "not significant" cell can be read as "too few seeds" or "no effect this large".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

__all__ = ["Interval", "McNemar", "paired_t", "welch", "significant", "mcnemar", "paired_bootstrap",
           "crossed_bootstrap", "holm", "paired_power", "min_detectable_effect", "seeds_needed"]

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
    ``note`` saying why there is no interval. ``n`` is the number of pairs (paired methods), of seeds
    (``crossed_bootstrap``, whose image count is ``n_other``) or the size of the first sample
    (``welch``, whose second sample size is ``n_other``). ``p_value``: two-sided p of "mean = 0" where
    the method gives one (``paired_t``, ``crossed_bootstrap``), None without an interval."""
    mean: float
    n: int
    low: float | None
    high: float | None
    method: str
    note: str = ""
    n_other: int | None = None
    p_value: float | None = None


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
    when seeds match. Equals ``scipy.stats.ttest_rel(mtl, stl).confidence_interval(level)``, and
    ``p_value`` equals its ``pvalue`` (two-sided, H0: mean difference 0).
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
    p = float(2.0 * stats.t.sf(abs(mean / se), n - 1))
    return Interval(mean, n, mean - q * se, mean + q * se, method, p_value=min(p, 1.0))


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
    p = float(2.0 * stats.t.sf(abs(mean) / se, df))
    return Interval(mean, na, mean - q * se, mean + q * se, method, "", nb, p)


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
    proportions. For ONE seed pair: several seeds' images are not independent pairs (use
    ``crossed_bootstrap``). Exact two-sided binomial test on the discordant counts when b + c < 25, else the
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
    assumption. For ONE seed pair: pooling several seeds' images as independent pairs overstates
    certainty (use ``crossed_bootstrap``). Deterministic for a given ``seed`` (numpy ``default_rng``).
    ``n`` = number of images.
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


def crossed_bootstrap(diffs: ArrayLike, reps: int = 2000, seed: int = 0, level: float = 0.95) -> Interval:
    """Percentile interval of the mean per-image difference over several seeds, resampling seeds AND images.

    ``diffs`` is seeds x images of MTL - STL, every seed scored on the same test images (same column =
    same image). Each replicate draws seeds with replacement and one set of images with replacement,
    shared by all drawn seeds, and takes the mean of that sub-matrix. Seeds are the unit of
    replication: repeating a seed adds no information, so k identical seeds give the interval of one,
    where pooling them as k x n independent images would narrow it by sqrt(k). The test set is a
    sample too, so images are resampled as well. ``p_value``: two-sided bootstrap p of "mean = 0".
    Deterministic for a given ``seed`` (numpy ``default_rng``). ``n`` = seeds, ``n_other`` = images.
    Raises ValueError unless ``diffs`` is 2-D.
    """
    level = _check_level(level)
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2:
        raise ValueError(f"crossed_bootstrap needs a 2-D seeds x images array, got {d.ndim}-D")
    k, n = (int(s) for s in d.shape)
    method = "two-way bootstrap (seeds x images)"
    mean = _mean(d)

    def none(note: str) -> Interval:
        return Interval(mean, k, None, None, method, note, n)

    if d.size == 0:
        return none(f"{k} seeds x {n} images, no data")
    if not np.all(np.isfinite(d)):
        return none("non-finite values, no interval")
    if d.size == 1:
        return none("1 seed x 1 image, no interval")
    if _zero_spread(d.reshape(-1)):
        return none("zero variance, no interval")
    reps = int(reps)
    if reps < 2:
        return none(f"reps={reps}, no interval")
    # Separate streams for seeds and images: the image draws do not depend on the number of seeds, so
    # k identical seeds reproduce the one-seed interval (up to rounding), not merely in distribution.
    seed_rng, image_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    boot = np.empty(reps, dtype=float)
    rows = max(1, _BOOT_CHUNK // (2 * n))  # two rows x n temporaries per chunk
    for start in range(0, reps, rows):
        stop = min(reps, start + rows)
        if k == 1:
            per_image = np.broadcast_to(d[0], (stop - start, n))
        else:
            counts = seed_rng.multinomial(k, np.full(k, 1.0 / k), size=stop - start)
            per_image = (counts @ d) / k  # per replicate, per image: mean over the drawn seeds
        if n == 1:
            boot[start:stop] = per_image[:, 0]
        else:
            idx = image_rng.integers(0, n, size=(stop - start, n))
            boot[start:stop] = np.take_along_axis(per_image, idx, axis=1).mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    tail = min(int(np.count_nonzero(boot <= 0.0)), int(np.count_nonzero(boot >= 0.0))) + 1
    p = min(1.0, 2.0 * tail / (reps + 1))
    note = "1 seed: test images only" if k == 1 else "1 image: seeds only" if n == 1 else ""
    return Interval(mean, k, float(low), float(high), method, note, n, p)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni step-down adjusted p-values, in input order.

    A results table tests many cells at once, so at 5% each some look significant by chance; Holm
    bounds the chance of any false positive (family-wise error) at the level, and is never less
    powerful than Bonferroni. None (a cell without a test) and NaN pass through unchanged and do not
    count among the m tests. Raises ValueError for a p-value outside [0, 1] (a programming error).
    """
    out: list[float | None] = [None if p is None else float(p) for p in p_values]
    tested = [i for i, p in enumerate(out) if p is not None and not math.isnan(p)]
    p = np.array([out[i] for i in tested], dtype=float)
    if np.any((p < 0.0) | (p > 1.0)):
        raise ValueError(f"p-values must be in [0, 1], got {p[(p < 0.0) | (p > 1.0)].tolist()}")
    m = len(tested)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(m, 0, -1)))
    for j, a in zip(order, adjusted):
        out[tested[int(j)]] = float(a)
    return out


def _check_prob(name: str, x: float) -> float:
    x = float(x)
    if not 0.0 < x < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {x!r}")
    return x


def _usable_sd(sd: float | None) -> bool:
    return sd is not None and math.isfinite(sd) and sd > 0.0


def paired_power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t test (``paired_t``) over ``n`` seeds when the true mean
    difference is ``delta`` and the per-seed differences have standard deviation ``sd``.

    Noncentral t with n-1 df and noncentrality delta/sd*sqrt(n), as ``statsmodels``' ``TTestPower``.
    NaN when undefined: n < 2 (no test), sd not positive and finite, delta not finite.
    """
    alpha = _check_prob("alpha", alpha)
    n = int(n)
    if n < 2 or not _usable_sd(sd) or not math.isfinite(delta):
        return math.nan
    df = n - 1
    nc = abs(float(delta)) / float(sd) * math.sqrt(n)
    crit = float(stats.t.isf(alpha / 2.0, df))
    # P(T > crit) + P(T < -crit). The second tail as sf at -nc (T at nc is -T at -nc): scipy's nct.cdf
    # returns NaN far in the lower tail (e.g. n=10, delta/sd=3), where the probability is ~0.
    power = float(stats.nct.sf(crit, df, nc)) + float(stats.nct.sf(crit, df, -nc))
    return min(1.0, power)


def min_detectable_effect(sd: float | None, n: int, power: float = 0.8, alpha: float = 0.05) -> float | None:
    """Smallest |mean difference| (units of ``sd``) that the paired t over ``n`` seeds detects with
    probability ``power``: what a "not significant" cell can still rule out.

    None when n < 2 or sd is None, 0 or not finite; 0.0 when power <= alpha (met with no effect).
    """
    alpha, power = _check_prob("alpha", alpha), _check_prob("power", power)
    n = int(n)
    if n < 2 or sd is None or not _usable_sd(sd):
        return None
    if power <= alpha:
        return 0.0

    def short(effect: float) -> float:
        return paired_power(effect, 1.0, n, alpha) - power

    high = 1.0
    while short(high) < 0.0:
        high *= 2.0
        if high > 1e9:
            return None
    effect = float(optimize.brentq(short, 0.0, high, xtol=1e-14, rtol=1e-12))
    return effect * float(sd)


def seeds_needed(delta: float, sd: float | None, power: float = 0.8, alpha: float = 0.05,
                 max_n: int = 10_000) -> int | None:
    """Smallest number of seeds n >= 2 at which the paired t detects a true mean difference ``delta``
    (per-seed sd ``sd``) with probability ``power``: how many more seeds a borderline cell needs.

    None when sd is None, 0 or not finite, delta is 0 or not finite, or the answer exceeds ``max_n``.
    """
    alpha, power = _check_prob("alpha", alpha), _check_prob("power", power)
    max_n = int(max_n)
    if sd is None or not _usable_sd(sd) or not math.isfinite(delta) or delta == 0.0 or max_n < 2:
        return None
    effect = abs(float(delta)) / float(sd)

    def enough(n: int) -> bool:
        return paired_power(effect, 1.0, n, alpha) >= power

    if enough(2):
        return 2
    low = high = 2  # doubling search keeps enough(low) False; then bisect down to the first True
    while True:
        if high >= max_n:
            return None
        low, high = high, min(2 * high, max_n)
        if enough(high):
            break
    while high - low > 1:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid
    return high
