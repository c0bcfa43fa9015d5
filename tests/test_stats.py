"""Golden tests for mtl_cluster.collect.stats against scipy (and statsmodels when installed) on fixed data."""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mtl_cluster.collect import stats as mstats
from mtl_cluster.collect.stats import (
    Interval,
    McNemar,
    crossed_bootstrap,
    holm,
    mcnemar,
    min_detectable_effect,
    paired_bootstrap,
    paired_power,
    paired_t,
    seeds_needed,
    significant,
    welch,
)

MTL = [71.2, 73.5, 70.9, 72.8, 74.1]
STL = [70.1, 72.0, 71.3, 70.9, 72.2]
A = [3.1, 2.7, 3.9, 4.4, 3.3, 2.9]
B = [2.2, 2.9, 1.8, 2.5, 3.0]


# ---- paired_t -------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [0.95, 0.9, 0.99])
def test_paired_t_equals_scipy_ttest_rel(level):
    iv = paired_t(np.subtract(MTL, STL), level)
    ci = stats.ttest_rel(MTL, STL).confidence_interval(level)
    assert iv.mean == pytest.approx(np.mean(np.subtract(MTL, STL)), abs=1e-12)
    assert iv.low == pytest.approx(float(ci.low), abs=1e-12)
    assert iv.high == pytest.approx(float(ci.high), abs=1e-12)
    assert (iv.n, iv.method, iv.note, iv.n_other) == (5, "paired t", "", None)


def test_paired_t_equals_hand_computation():
    d = np.array(MTL) - np.array(STL)
    n = d.size
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    iv = paired_t(list(d))
    assert iv.low == pytest.approx(d.mean() - half, abs=1e-12)
    assert iv.high == pytest.approx(d.mean() + half, abs=1e-12)


def test_paired_t_one_pair_has_no_interval():
    iv = paired_t([1.5])
    assert (iv.mean, iv.n, iv.low, iv.high, iv.note) == (1.5, 1, None, None, "n=1, no interval")
    assert significant(iv) == 0


@pytest.mark.parametrize("diffs", [[0.7, 0.7, 0.7], [0.0, 0.0], [73.5 - 72.0, 73.5 - 72.0, 73.5 - 72.0]])
def test_paired_t_zero_variance_is_not_significant(diffs):
    iv = paired_t(diffs)
    assert iv.low is None and iv.high is None
    assert iv.note == "zero variance, no interval"
    assert iv.mean == pytest.approx(diffs[0])
    assert significant(iv) == 0


def test_paired_t_floating_noise_counts_as_zero_variance():
    # The same 0.2-point gain at three seeds differs in the last bits after subtraction; that must
    # not give a hair-thin "significant" interval.
    d = [80.3 - 80.1, 0.3 - 0.1, 1.3 - 1.1]
    assert np.ptp(d) > 0
    assert paired_t(d).note == "zero variance, no interval"


def test_paired_t_empty_and_nonfinite_do_not_raise():
    assert paired_t([]).low is None and paired_t([]).n == 0
    iv = paired_t([1.0, float("nan"), 2.0])
    assert iv.low is None and "non-finite" in iv.note


def test_bad_level_is_a_programming_error():
    with pytest.raises(ValueError):
        paired_t([1.0, 2.0], level=95)


# ---- welch ----------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [0.95, 0.8])
def test_welch_equals_scipy_ttest_ind(level):
    iv = welch(A, B, level)
    ci = stats.ttest_ind(A, B, equal_var=False).confidence_interval(level)
    assert iv.mean == pytest.approx(np.mean(A) - np.mean(B), abs=1e-12)
    assert iv.low == pytest.approx(float(ci.low), abs=1e-12)
    assert iv.high == pytest.approx(float(ci.high), abs=1e-12)
    assert (iv.n, iv.n_other, iv.method, iv.note) == (6, 5, "Welch t", "")


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")
def test_welch_one_side_constant_still_has_interval():
    iv = welch([1.0, 2.0, 3.0], [0.5, 0.5])
    ci = stats.ttest_ind([1.0, 2.0, 3.0], [0.5, 0.5], equal_var=False).confidence_interval()
    assert iv.low == pytest.approx(float(ci.low), abs=1e-12)
    assert iv.high == pytest.approx(float(ci.high), abs=1e-12)


@pytest.mark.parametrize("a,b", [([1.0], [1.0, 2.0]), ([1.0, 2.0], [3.0]), ([], [1.0, 2.0])])
def test_welch_too_few_values_has_no_interval(a, b):
    iv = welch(a, b)
    assert iv.low is None and iv.high is None and iv.note
    assert (iv.n, iv.n_other) == (len(a), len(b))
    assert significant(iv) == 0


def test_welch_both_zero_variance_has_no_interval():
    iv = welch([2.0, 2.0, 2.0], [1.0, 1.0])
    assert iv.mean == 1.0 and iv.low is None and iv.note == "zero variance, no interval"
    assert significant(iv) == 0


# ---- significant ----------------------------------------------------------------------------

@pytest.mark.parametrize("low,high,want", [(0.1, 2.0, 1), (-2.0, -0.1, -1), (-1.0, 1.0, 0),
                                           (0.0, 1.0, 0), (-1.0, 0.0, 0), (None, None, 0)])
def test_significant(low, high, want):
    assert significant(Interval(0.5, 3, low, high, "paired t")) == want


def test_significant_none():
    assert significant(None) == 0


def test_intervals_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        paired_t([1.0, 2.0]).mean = 3.0  # type: ignore[misc]


# ---- mcnemar --------------------------------------------------------------------------------

def _pairs(both: int, b: int, c: int, neither: int) -> tuple[list[bool], list[bool]]:
    a = [True] * both + [True] * b + [False] * c + [False] * neither
    y = [True] * both + [False] * b + [True] * c + [False] * neither
    return a, y


def test_mcnemar_known_answer():
    r = mcnemar(*_pairs(50, 10, 2, 8))
    assert (r.n, r.b, r.c) == (70, 10, 2)
    assert r.method == "exact binomial"
    assert round(r.p_value, 4) == 0.0386  # 2 * (1 + 12 + 66) / 2**12
    assert r.diff == pytest.approx(100.0 * 8 / 70)


@pytest.mark.parametrize("b,c", [(0, 1), (3, 4), (7, 0), (12, 12), (20, 4), (0, 24)])
def test_mcnemar_exact_branch_equals_binomtest(b, c):
    r = mcnemar(*_pairs(30, b, c, 5))
    assert r.method == "exact binomial"
    assert r.p_value == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, abs=1e-12)


@pytest.mark.parametrize("b,c", [(25, 0), (15, 10), (40, 22), (13, 13), (5, 60)])
def test_mcnemar_chi_square_branch_equals_hand_computation(b, c):
    r = mcnemar(*_pairs(100, b, c, 7))
    assert r.method == "chi-square (continuity corrected)"
    want = stats.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1)
    assert r.p_value == pytest.approx(want, abs=1e-12)
    assert r.diff == pytest.approx(100.0 * (b - c) / (100 + b + c + 7))


def test_mcnemar_no_discordant_images():
    r = mcnemar(*_pairs(20, 0, 0, 5))
    assert (r.b, r.c, r.p_value, r.diff) == (0, 0, 1.0, 0.0)
    r0 = mcnemar([], [])
    assert r0.n == 0 and r0.p_value == 1.0 and math.isnan(r0.diff)


def test_mcnemar_accepts_int_and_numpy_inputs():
    a, y = _pairs(5, 3, 1, 2)
    assert mcnemar(np.array(a, dtype=int), np.array(y)) == mcnemar(a, y)
    assert isinstance(mcnemar(a, y), McNemar)


def test_mcnemar_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        mcnemar([True, False], [True])


@pytest.mark.parametrize("b,c", [(10, 2), (3, 4), (40, 22), (5, 60)])
def test_mcnemar_matches_statsmodels(b, c):
    sm = pytest.importorskip("statsmodels.stats.contingency_tables")
    table = [[30, b], [c, 5]]
    want = sm.mcnemar(table, exact=b + c < 25, correction=True).pvalue
    assert mcnemar(*_pairs(30, b, c, 5)).p_value == pytest.approx(want, abs=1e-10)


# ---- paired_bootstrap -----------------------------------------------------------------------

def _errors(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Skewed per-image absolute errors; model a is worse by ``shift`` on average, correlated with b."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 2.5, n)
    err_b = np.abs(base + rng.normal(0.0, 1.0, n))
    err_a = np.abs(base + rng.normal(0.0, 1.0, n)) + shift
    return err_a, err_b


def test_bootstrap_deterministic_per_seed():
    a, b = _errors(500, 0.3, seed=1)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(list(a), list(b), seed=7)
    assert paired_bootstrap(a, b, seed=7) != paired_bootstrap(a, b, seed=8)


def test_bootstrap_finds_known_shift():
    shift = 0.4
    a, b = _errors(5000, shift, seed=2)
    iv = paired_bootstrap(a, b, seed=0)
    assert iv.method == "paired bootstrap (images)" and iv.n == 5000 and iv.note == ""
    assert iv.mean == pytest.approx(np.mean(a - b), abs=1e-12)
    assert iv.low < shift < iv.high
    assert iv.low < iv.mean < iv.high
    assert significant(iv) == 1
    assert significant(paired_bootstrap(b, a, seed=0)) == -1


def test_bootstrap_covers_zero_without_shift():
    rng = np.random.default_rng(3)
    a = rng.gamma(2.0, 2.5, 3000)
    shuffled = rng.permutation(a)  # same errors, different images: no shift at all
    iv = paired_bootstrap(a, shuffled, seed=0)
    assert iv.low < 0 < iv.high and significant(iv) == 0


def test_bootstrap_coverage_without_shift():
    # Independent noise, same distribution: a 95% interval should cover 0 about 95% of the time.
    # 40 fixed seeds, so the count is deterministic; >= 34 leaves room for an honest 95% procedure.
    covered = 0
    for seed in range(40):
        a, b = _errors(1000, 0.0, seed=100 + seed)
        iv = paired_bootstrap(a, b, reps=1000, seed=seed)
        covered += iv.low < 0 < iv.high
    assert covered >= 34


def test_bootstrap_agrees_with_normal_approximation():
    a, b = _errors(5000, 0.2, seed=5)
    d = a - b
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    iv = paired_bootstrap(a, b, reps=2000, seed=0)
    width = 2 * half
    assert abs(iv.low - (d.mean() - half)) < 0.1 * width
    assert abs(iv.high - (d.mean() + half)) < 0.1 * width


def test_bootstrap_is_fast_on_10k_images():
    a, b = _errors(10_000, 0.1, seed=6)
    t0 = time.perf_counter()
    iv = paired_bootstrap(a, b, reps=2000, seed=0)
    assert time.perf_counter() - t0 < 5.0  # typically ~0.3 s; generous for loaded CI machines
    assert iv.low is not None


@pytest.mark.parametrize("a,b,note", [([], [], "n=0, no data"), ([2.0], [1.0], "n=1, no interval"),
                                      ([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], "zero variance, no interval"),
                                      ([1.0, float("inf")], [1.0, 2.0], "non-finite values, no interval")])
def test_bootstrap_degenerate_inputs(a, b, note):
    iv = paired_bootstrap(a, b)
    assert iv.low is None and iv.high is None and iv.note == note and iv.n == len(a)
    assert significant(iv) == 0


def test_bootstrap_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_bootstrap_has_no_p_value_and_welch_has_scipys():
    a, b = _errors(300, 0.3, seed=1)
    assert paired_bootstrap(a, b).p_value is None
    assert welch(A, B).p_value == pytest.approx(stats.ttest_ind(A, B, equal_var=False).pvalue, rel=1e-9)


# ---- paired_t p-value -----------------------------------------------------------------------

@pytest.mark.parametrize("mtl,stl", [(MTL, STL), (STL, MTL), (A[:5], B),
                                     ([80.0, 81.0, 80.5, 81.2], [70.0, 70.4, 70.1, 70.9])])
def test_paired_t_p_value_equals_scipy(mtl, stl):
    d = np.subtract(mtl, stl)
    iv = paired_t(d)
    assert iv.p_value == pytest.approx(stats.ttest_rel(mtl, stl).pvalue, rel=1e-9, abs=1e-15)
    assert iv.p_value == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue, rel=1e-9, abs=1e-15)
    assert paired_t(d, level=0.9).p_value == iv.p_value  # the level moves the interval, not the p


@pytest.mark.parametrize("diffs", [[], [1.5], [0.7, 0.7, 0.7], [1.0, float("nan"), 2.0]])
def test_paired_t_no_interval_has_no_p_value(diffs):
    assert paired_t(diffs).p_value is None


def test_interval_positional_construction_still_works():
    iv = Interval(0.5, 3, 0.1, 0.9, "paired t", "", None)
    assert iv.p_value is None and iv.n_other is None


# ---- holm -----------------------------------------------------------------------------------

def _statsmodels_holm(p_values: list[float | None]) -> list[float | None]:
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    tested = [p for p in p_values if p is not None]
    if not tested:
        return list(p_values)
    adjusted = iter(multitest.multipletests(tested, method="holm")[1])
    return [None if p is None else float(next(adjusted)) for p in p_values]


def _same(got: list[float | None], want: list[float | None]) -> None:
    assert [g is None for g in got] == [w is None for w in want]
    for g, w in zip(got, want):
        if w is not None:
            assert g == pytest.approx(w, abs=1e-12)


def test_holm_known_answer():
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> step-down max keeps 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)


@pytest.mark.parametrize("p_values", [
    [0.01, 0.01, 0.04, 0.04, 0.5],
    [0.02] * 5,
    [0.3, None, 0.01, 0.3, None, 0.01, 1.0],
    [0.0, 0.0, 1.0, 1.0],
    [0.049, 0.5, 0.049, 0.001, 0.001, 0.001],
    [0.7],
])
def test_holm_ties_match_statsmodels(p_values):
    _same(holm(p_values), _statsmodels_holm(p_values))


P_VALUES = st.lists(st.one_of(st.none(), st.floats(0.0, 1.0), st.sampled_from([0.001, 0.01, 0.05, 0.2])),
                    max_size=25)


# statsmodels' multipletests runs gc.collect() on every call (~0.1 s in a test process): few examples.
@settings(max_examples=50, deadline=None)
@given(P_VALUES)
def test_holm_matches_statsmodels_random(p_values):
    _same(holm(p_values), _statsmodels_holm(p_values))


@settings(max_examples=300, deadline=None)
@given(P_VALUES)
def test_holm_is_monotone_and_capped(p_values):
    got = holm(p_values)
    assert [g is None for g in got] == [p is None for p in p_values]
    pairs = [(p, q) for p, q in zip(p_values, got) if p is not None and q is not None]
    for p, q in pairs:
        assert p <= q <= 1.0                                  # never less than the raw p, capped at 1
    for p1, q1 in pairs:
        for p2, q2 in pairs:
            if p1 < p2:
                assert q1 <= q2                               # monotone in the raw p


def test_holm_none_passes_through_and_does_not_count():
    assert holm([]) == []
    assert holm([None, None]) == [None, None]
    assert holm([None, 0.01, None]) == [None, 0.01, None]   # m = 1, not 3
    assert holm([0.01, None, 0.02]) == pytest.approx([0.02, None, 0.02])


def test_holm_nan_passes_through_and_bad_p_raises():
    got = holm([0.01, float("nan"), 0.02])
    assert got[0] == pytest.approx(0.02) and got[1] is not None and math.isnan(got[1])
    with pytest.raises(ValueError):
        holm([0.5, 1.5])
    with pytest.raises(ValueError):
        holm([-0.1])


def test_holm_takes_interval_p_values():
    cells = [paired_t(np.subtract(MTL, STL)), paired_t([1.5]), paired_t([0.4, 0.5, 0.45, 0.6])]
    p_values = [c.p_value for c in cells]
    got = holm(p_values)
    assert got[1] is None and got[0] is not None and got[2] is not None
    _same(got, _statsmodels_holm(p_values))


# ---- crossed_bootstrap ----------------------------------------------------------------------

def _crossed(seeds: int, images: int, seed_sd: float, image_sd: float, shift: float, seed: int) -> np.ndarray:
    """seeds x images differences: a seed effect, an image effect shared by all seeds, and noise."""
    rng = np.random.default_rng(seed)
    return (shift + rng.normal(0.0, seed_sd, (seeds, 1)) + rng.normal(0.0, image_sd, (1, images))
            + rng.normal(0.0, 1.0, (seeds, images)))


def _width(iv: Interval) -> float:
    assert iv.low is not None and iv.high is not None
    return iv.high - iv.low


def test_crossed_tripled_seed_gives_the_one_seed_interval_pooling_does_not():
    # The flaw being fixed: three copies of one seed are one seed's worth of evidence.
    a, b = _errors(2000, 0.1, seed=11)
    d = a - b
    one = crossed_bootstrap(d[None, :])
    three = crossed_bootstrap(np.vstack([d, d, d]))
    assert (one.n, three.n, one.n_other, three.n_other) == (1, 3, 2000, 2000)
    assert three.mean == pytest.approx(one.mean, abs=1e-12)
    assert three.low == pytest.approx(one.low, abs=1e-12)
    assert three.high == pytest.approx(one.high, abs=1e-12)
    assert three.p_value == one.p_value
    # The old pooled image bootstrap treats the 3 x 2000 rows as independent and narrows by ~sqrt(3).
    pooled_one = paired_bootstrap(a, b)
    pooled_three = paired_bootstrap(np.tile(a, 3), np.tile(b, 3))
    assert _width(pooled_one) / _width(pooled_three) == pytest.approx(math.sqrt(3), rel=0.1)
    assert _width(three) / _width(pooled_three) == pytest.approx(math.sqrt(3), rel=0.1)


def test_crossed_tripled_seed_accuracy_keeps_its_p_value_where_mcnemar_pooling_does_not():
    right_mtl, right_stl = map(np.array, _pairs(150, 30, 12, 64))  # 256 images, MTL +18 net
    d = 100.0 * (right_mtl.astype(int) - right_stl.astype(int))  # percentage points per image
    one, three = crossed_bootstrap(d[None, :]), crossed_bootstrap(np.vstack([d, d, d]))
    assert three.mean == pytest.approx(100.0 * (right_mtl.mean() - right_stl.mean()))
    assert (three.low, three.high, three.p_value) == pytest.approx((one.low, one.high, one.p_value), abs=1e-9)
    p1 = mcnemar(right_mtl, right_stl).p_value
    p3 = mcnemar(np.tile(right_mtl, 3), np.tile(right_stl, 3)).p_value
    assert p3 < p1 / 100                                       # pooling manufactures certainty


def test_crossed_identical_seeds_equal_scipy_bootstrap_over_images():
    a, b = _errors(1500, 0.05, seed=13)
    d = a - b
    iv = crossed_bootstrap(np.vstack([d] * 4), reps=5000, seed=1)
    ref = stats.bootstrap((d,), np.mean, n_resamples=5000, method="percentile", random_state=2)
    width = float(ref.confidence_interval.high - ref.confidence_interval.low)
    assert iv.low == pytest.approx(float(ref.confidence_interval.low), abs=0.05 * width)
    assert iv.high == pytest.approx(float(ref.confidence_interval.high), abs=0.05 * width)
    dist = ref.bootstrap_distribution
    want_p = min(1.0, 2 * min(np.mean(dist <= 0), np.mean(dist >= 0)))
    assert 0.05 < want_p < 0.95                                # a p that Monte-Carlo can pin
    assert iv.p_value == pytest.approx(want_p, abs=0.03)


def test_crossed_no_image_noise_equals_scipy_bootstrap_over_seed_means():
    rng = np.random.default_rng(14)
    seed_means = rng.normal(0.4, 1.0, 8)
    d = np.repeat(seed_means[:, None], 300, axis=1)
    iv = crossed_bootstrap(d, reps=5000, seed=3)
    ref = stats.bootstrap((seed_means,), np.mean, n_resamples=5000, method="percentile", random_state=4)
    width = float(ref.confidence_interval.high - ref.confidence_interval.low)
    assert iv.low == pytest.approx(float(ref.confidence_interval.low), abs=0.05 * width)
    assert iv.high == pytest.approx(float(ref.confidence_interval.high), abs=0.05 * width)
    dist = ref.bootstrap_distribution
    assert iv.p_value == pytest.approx(min(1.0, 2 * min(np.mean(dist <= 0), np.mean(dist >= 0))), abs=0.03)


def test_crossed_deterministic_per_seed_and_accepts_lists():
    d = _crossed(4, 300, 0.3, 1.0, 0.2, seed=15)
    assert crossed_bootstrap(d, seed=7) == crossed_bootstrap(d.tolist(), seed=7)
    assert crossed_bootstrap(d, seed=7) != crossed_bootstrap(d, seed=8)


def test_crossed_finds_known_shift():
    d = _crossed(6, 2000, 0.2, 1.0, 0.8, seed=16)
    iv = crossed_bootstrap(d)
    assert (iv.method, iv.n, iv.n_other, iv.note) == ("two-way bootstrap (seeds x images)", 6, 2000, "")
    assert iv.mean == pytest.approx(d.mean(), abs=1e-12)
    assert iv.low < 0.8 < iv.high and iv.low < iv.mean < iv.high
    assert significant(iv) == 1 and iv.p_value == pytest.approx(2 / 2001)
    neg = crossed_bootstrap(-d)
    assert significant(neg) == -1 and neg.p_value == pytest.approx(2 / 2001)
    null = crossed_bootstrap(d - d.mean())
    assert significant(null) == 0 and null.p_value > 0.5


def test_crossed_covers_where_pooling_does_not():
    # Seed effects and an image effect shared by all seeds, true mean 0. Fixed seeds, so counts are
    # deterministic: the crossed interval keeps its ~95% coverage; pooled images lose most of it.
    crossed = pooled = 0
    for trial in range(40):
        d = _crossed(8, 300, 0.3, 1.0, 0.0, seed=200 + trial)
        iv = crossed_bootstrap(d, reps=1000, seed=trial)
        crossed += iv.low < 0 < iv.high
        pb = paired_bootstrap(d.ravel(), np.zeros(d.size), reps=1000, seed=trial)
        pooled += pb.low < 0 < pb.high
    assert crossed >= 34
    assert pooled <= 25


def test_crossed_one_seed_resamples_images_only():
    a, b = _errors(3000, 0.2, seed=17)
    iv = crossed_bootstrap((a - b)[None, :], seed=0)
    assert (iv.n, iv.n_other, iv.note) == (1, 3000, "1 seed: test images only")
    ref = paired_bootstrap(a, b, seed=0)
    assert iv.low == pytest.approx(ref.low, abs=0.1 * _width(ref))
    assert iv.high == pytest.approx(ref.high, abs=0.1 * _width(ref))


def test_crossed_one_image_resamples_seeds_only():
    iv = crossed_bootstrap([[0.1], [0.5], [0.3], [0.9]])
    assert (iv.n, iv.n_other, iv.note) == (4, 1, "1 image: seeds only")
    assert iv.low is not None and 0.1 <= iv.low < iv.high <= 0.9


@pytest.mark.parametrize("diffs,note", [
    (np.empty((0, 5)), "0 seeds x 5 images, no data"),
    (np.empty((3, 0)), "3 seeds x 0 images, no data"),
    ([[1.0, float("nan")], [0.0, 1.0]], "non-finite values, no interval"),
    ([[1.0, 2.0], [float("inf"), 1.0]], "non-finite values, no interval"),
    ([[1.5]], "1 seed x 1 image, no interval"),
    (np.zeros((3, 256)), "zero variance, no interval"),
    ([[100.0] * 4] * 2, "zero variance, no interval"),
    ([[80.3 - 80.1, 0.3 - 0.1], [1.3 - 1.1, 0.3 - 0.1]], "zero variance, no interval"),
])
def test_crossed_degenerate_inputs(diffs, note):
    iv = crossed_bootstrap(diffs)
    shape = np.shape(diffs)
    assert (iv.low, iv.high, iv.p_value, iv.note) == (None, None, None, note)
    assert (iv.n, iv.n_other) == shape
    assert significant(iv) == 0


def test_crossed_too_few_reps_has_no_interval():
    iv = crossed_bootstrap(_crossed(3, 50, 0.3, 1.0, 0.0, seed=18), reps=1)
    assert iv.low is None and iv.note == "reps=1, no interval"


@pytest.mark.parametrize("diffs", [[1.0, 2.0, 3.0], np.zeros((2, 3, 4)), 1.0])
def test_crossed_needs_two_dimensions(diffs):
    with pytest.raises(ValueError):
        crossed_bootstrap(diffs)


def test_crossed_bad_level_raises():
    with pytest.raises(ValueError):
        crossed_bootstrap(np.ones((2, 3)), level=1.0)


def test_crossed_chunking_does_not_change_the_answer(monkeypatch):
    d = _crossed(5, 1000, 0.3, 1.0, 0.1, seed=19)
    whole = crossed_bootstrap(d, reps=3000)
    monkeypatch.setattr(mstats, "_BOOT_CHUNK", 2 * 1000 * 7)  # 7 replicates a chunk, ragged last
    chunked = crossed_bootstrap(d, reps=3000)
    assert chunked.low == pytest.approx(whole.low, abs=0.05 * _width(whole))
    assert chunked.high == pytest.approx(whole.high, abs=0.05 * _width(whole))


def test_crossed_is_fast_on_10_seeds_x_10k_images():
    d = _crossed(10, 10_000, 0.3, 1.0, 0.0, seed=20)
    t0 = time.perf_counter()
    iv = crossed_bootstrap(d, reps=2000)
    assert time.perf_counter() - t0 < 5.0  # typically ~0.3 s
    assert iv.low is not None


# ---- power ----------------------------------------------------------------------------------

def _ttest_power():
    power = pytest.importorskip("statsmodels.stats.power")
    return power.TTestPower()


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 10, 20, 50])
@pytest.mark.parametrize("effect", [0.0, 0.1, 0.5, 1.0, 2.0, -0.7, -2.5])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_paired_power_equals_statsmodels(n, effect, alpha):
    want = float(_ttest_power().power(effect_size=effect, nobs=n, alpha=alpha, alternative="two-sided"))
    got = paired_power(effect * 1.7, 1.7, n, alpha)
    if math.isnan(want):  # statsmodels' scipy nct.cdf is NaN far in the lower tail; the power is ~1 there
        assert abs(effect) * math.sqrt(n) > 8 and 0.999 < got <= 1.0
    else:
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_paired_power_where_scipy_lower_tail_is_nan():
    # statsmodels returns NaN here (scipy's nct.cdf far in the lower tail); the power is ~1.
    assert 0.999 < paired_power(3.0, 1.0, 10) <= 1.0
    assert paired_power(-3.0, 1.0, 10) == paired_power(3.0, 1.0, 10)


def test_paired_power_properties():
    assert paired_power(0.0, 1.0, 5) == pytest.approx(0.05, abs=1e-12)
    assert paired_power(0.0, 1.0, 5, alpha=0.1) == pytest.approx(0.1, abs=1e-12)
    powers = [paired_power(0.5, 1.0, n) for n in range(2, 60)]
    assert all(p < q for p, q in zip(powers, powers[1:]))
    by_effect = [paired_power(e, 1.0, 6) for e in np.linspace(0.0, 3.0, 31)]
    assert all(p < q for p, q in zip(by_effect, by_effect[1:]))


def test_paired_power_matches_simulated_paired_t():
    # The power is the rate at which paired_t's interval excludes 0 on normal per-seed differences.
    rng = np.random.default_rng(21)
    n, delta, sd, sims = 5, 0.6, 0.5, 3000
    hits = sum(significant(paired_t(rng.normal(delta, sd, n))) != 0 for _ in range(sims))
    want = paired_power(delta, sd, n)
    assert hits / sims == pytest.approx(want, abs=4 * math.sqrt(want * (1 - want) / sims))


@pytest.mark.parametrize("delta,sd,n", [(1.0, 1.0, 1), (1.0, 1.0, 0), (1.0, 0.0, 5), (1.0, -1.0, 5),
                                        (1.0, float("nan"), 5), (float("inf"), 1.0, 5), (1.0, float("inf"), 5)])
def test_paired_power_undefined_is_nan(delta, sd, n):
    assert math.isnan(paired_power(delta, sd, n))


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100])
@pytest.mark.parametrize("power,alpha", [(0.8, 0.05), (0.9, 0.05), (0.8, 0.01)])
def test_min_detectable_effect_equals_statsmodels(n, power, alpha):
    tp = _ttest_power()
    want = float(tp.solve_power(effect_size=None, nobs=n, alpha=alpha, power=power))
    sd = 2.5
    got = min_detectable_effect(sd, n, power, alpha)
    assert got is not None
    assert paired_power(got, sd, n, alpha) == pytest.approx(power, abs=1e-9)
    sm_power = float(tp.power(got / sd, n, alpha))        # NaN where scipy's nct.cdf fails (n=2)
    assert math.isnan(sm_power) or sm_power == pytest.approx(power, abs=1e-9)
    # statsmodels' solver fails at 2-4 seeds with a strict alpha or high power (its power() turns NaN
    # inside the bracket and it returns a wrong root, e.g. 25.0); elsewhere it stops within ~1e-5.
    converged = abs(paired_power(want, 1.0, n, alpha) - power) < 1e-4
    assert converged or n <= 4
    if converged:
        assert got == pytest.approx(want * sd, rel=1e-5)


@pytest.mark.parametrize("sd,n", [(None, 5), (0.0, 5), (-1.0, 5), (float("nan"), 5), (float("inf"), 5),
                                  (1.0, 1), (1.0, 0)])
def test_min_detectable_effect_undefined_is_none(sd, n):
    assert min_detectable_effect(sd, n) is None


def test_power_arguments_outside_unit_interval_raise():
    with pytest.raises(ValueError):
        min_detectable_effect(1.0, 5, power=1.0)
    with pytest.raises(ValueError):
        seeds_needed(1.0, 1.0, alpha=0.0)
    with pytest.raises(ValueError):
        paired_power(1.0, 1.0, 5, alpha=5)


def test_min_detectable_effect_power_below_alpha_is_zero():
    assert min_detectable_effect(1.0, 5, power=0.04) == 0.0


EFFECTS = [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("effect", EFFECTS)
@pytest.mark.parametrize("power,alpha", [(0.8, 0.05), (0.9, 0.05), (0.8, 0.01)])
def test_seeds_needed_is_ceil_of_statsmodels(effect, power, alpha):
    want = float(_ttest_power().solve_power(effect_size=effect, nobs=None, alpha=alpha, power=power))
    sd = 0.8
    n = seeds_needed(effect * sd, sd, power, alpha)
    assert n is not None and n >= 2
    assert n == max(2, math.ceil(want - 1e-6))   # statsmodels' nobs is continuous (and ~1e-6 loose)
    assert paired_power(effect * sd, sd, n, alpha) >= power
    if n > 2:
        assert paired_power(effect * sd, sd, n - 1, alpha) < power
    assert seeds_needed(-effect * sd, sd, power, alpha) == n


def test_seeds_needed_and_min_detectable_effect_agree():
    for n in [2, 3, 5, 10, 40]:
        mde = min_detectable_effect(1.0, n)
        assert mde is not None
        assert seeds_needed(mde * 1.000001, 1.0) == n      # just above the MDE: n seeds suffice
        assert seeds_needed(mde * 0.999, 1.0) == n + 1     # just below: one more seed


def test_seeds_needed_max_n():
    n = seeds_needed(0.1, 1.0)
    assert n == 787
    assert seeds_needed(0.1, 1.0, max_n=n) == n
    assert seeds_needed(0.1, 1.0, max_n=n - 1) is None
    assert seeds_needed(0.001, 1.0) is None                # ~7.8 million seeds > 10_000
    assert seeds_needed(50.0, 1.0, max_n=2) == 2
    assert seeds_needed(0.5, 1.0, max_n=1) is None


@pytest.mark.parametrize("delta,sd", [(1.0, None), (1.0, 0.0), (1.0, -2.0), (1.0, float("nan")),
                                      (1.0, float("inf")), (0.0, 1.0), (float("nan"), 1.0)])
def test_seeds_needed_undefined_is_none(delta, sd):
    assert seeds_needed(delta, sd) is None
