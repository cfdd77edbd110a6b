import math

import numpy as np
import pytest

from xcult.stats import ema, holm, mcnemar_exact, paired_bootstrap_ci, rankc


def pairs(n01, n10, n11=0, n00=0):
    a = [True] * n01 + [False] * n10 + [True] * n11 + [False] * n00
    b = [False] * n01 + [True] * n10 + [True] * n11 + [False] * n00
    return np.array(a), np.array(b)


@pytest.mark.parametrize(
    "n01,n10,p",
    [
        (5, 0, 2 / 32),  # all discordant one way: 2 * 0.5^5
        (9, 1, 2 * 11 / 1024),  # 2 * (C(10,0) + C(10,1)) / 2^10
        (3, 3, 1.0),
        (0, 0, 1.0),  # no discordant pairs: no evidence
    ],
)
def test_mcnemar_exact_by_hand(n01, n10, p):
    a, b = pairs(n01, n10, n11=7, n00=4)
    assert mcnemar_exact(a, b) == pytest.approx(p)
    assert mcnemar_exact(b, a) == pytest.approx(p)


def test_mcnemar_equals_the_binomial_sum():
    """scipy's exact binomial test equals the hand-written sum it replaced, 2 * P(X <= min)."""
    rng = np.random.default_rng(3)
    for n01, n10 in rng.integers(0, 120, size=(60, 2)):
        a, b = pairs(int(n01), int(n10), n11=5)
        n, k = n01 + n10, min(n01, n10)
        want = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(int(n), i) for i in range(int(k) + 1)) / 2 ** int(n))
        assert mcnemar_exact(a, b) == pytest.approx(want, rel=1e-9, abs=1e-300)


def percentile_ci(a, b, n_boot=10_000, alpha=0.05, seed=0):
    """The percentile bootstrap xcult used before scipy's BCa."""
    d = np.asarray(a, float) - np.asarray(b, float)
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    return tuple(np.quantile(d[idx].mean(axis=1), [alpha / 2, 1 - alpha / 2]))


def test_bca_agrees_with_the_percentile_bootstrap_when_symmetric():
    """Balanced discordant pairs (no skew): BCa's correction vanishes and the CI equals the
    percentile CI (up to the 1/n lattice); 45 vs 2 discordant pairs near the ceiling is
    skewed, and BCa moves the lower end by several lattice steps."""
    a, b = pairs(30, 30, n11=100, n00=168)  # 328 items, one lattice step 0.003
    bca, pct = paired_bootstrap_ci(a, b), percentile_ci(a, b)
    assert np.allclose(bca, pct, atol=0.0035), (bca, pct)
    a, b = pairs(45, 2, n11=3)
    bca, pct = paired_bootstrap_ci(a, b), percentile_ci(a, b)
    assert pct[0] - bca[0] > 0.02 and bca[0] < 0.86 < bca[1]


def test_holm_step_down_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.5, 0.04])
    # sorted 0.01, 0.03, 0.04, 0.04, 0.5 times 5, 4, 3, 2, 1, then a running maximum
    want = {0: 0.05, 2: 0.12, 1: 0.12, 4: 0.12, 3: 0.5}
    got = holm(p)
    assert all(got[i] == pytest.approx(v) for i, v in want.items())
    assert np.all(got >= p) and holm(np.array([])).size == 0
    assert holm(np.array([0.3, 0.9])).tolist() == pytest.approx([0.6, 0.9])


def test_bootstrap_degenerate_and_centered():
    a, b = pairs(0, 0, n11=20, n00=20)
    assert paired_bootstrap_ci(a, b) == (0.0, 0.0)
    assert paired_bootstrap_ci(np.ones(30), np.zeros(30)) == (1.0, 1.0)
    a, b = pairs(60, 20, n11=10, n00=10)  # gap 0.4 over 100 items
    lo, hi = paired_bootstrap_ci(a, b, n_boot=4000, seed=1)
    assert lo < 0.4 < hi and 0.2 < lo and hi < 0.6
    # the normal-approximation half-width sqrt(var/n)*1.96 is about 0.16
    sd = np.std(a.astype(float) - b.astype(float)) / math.sqrt(100)
    assert (hi - lo) / 2 == pytest.approx(1.96 * sd, rel=0.15)
    assert paired_bootstrap_ci(a, b, n_boot=4000, seed=1) == (lo, hi)
    with pytest.raises(ValueError):
        paired_bootstrap_ci(a, b[:-1])


def test_rankc_by_hand():
    same = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    assert rankc(same, same) == pytest.approx(1.0)
    # two options, swapped: P@1 = 0, P@2 = 1, weights softmax([1, 0])
    assert rankc(np.array([[0, 1]]), np.array([[1, 0]])) == pytest.approx(1 / (math.e + 1))
    # four options, top-2 sets equal but swapped: P@1=0, P@2=P@3=P@4=1
    w = np.exp([3, 2, 1, 0]) / np.exp([3, 2, 1, 0]).sum()
    assert rankc(np.array([[0, 1, 2, 3]]), np.array([[1, 0, 2, 3]])) == pytest.approx(w[1:].sum())


def test_ema():
    assert ema([1.0, 0.0, 0.0]) == pytest.approx([1.0, 0.8, 0.64])
    assert ema([]) == []
