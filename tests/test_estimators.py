"""Tests for workbench.analysis.estimators against values worked out by hand (arithmetic in the comments)."""

import math
from fractions import Fraction

import pytest

from workbench.errors import WorkbenchError
from workbench.analysis.estimators import (
    bootstrap_ci,
    cons_at_k,
    majority_vote,
    mean_and_stderr,
    mean_cons_at_k,
    mean_pass_at_k,
    pass_at_1,
    pass_at_k,
)


def test_pass_at_k_hand_computed():
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n=10, c=3, k=1: 1 - C(7,1)/C(10,1) = 1 - 7/10 = 0.3 (pass@1 is just c/n)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 1 - 1/12 = 0.91666...
    assert pass_at_k(10, 3, 5) == pytest.approx(11 / 12)
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    # n=16, c=3, k=4: 1 - C(13,4)/C(16,4) = 1 - 715/1820 = 0.607142857...
    assert pass_at_k(16, 3, 4) == pytest.approx(1 - 715 / 1820)


def test_pass_at_k_matches_exact_binomials_on_a_grid():
    # Exact rational arithmetic with math.comb, independent of the product form.
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
                assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12), (n, c, k)


def test_pass_at_k_edges():
    assert pass_at_k(8, 0, 3) == 0.0  # no correct sample: nothing to find
    assert pass_at_k(8, 8, 3) == 1.0  # all correct
    assert pass_at_k(5, 4, 2) == 1.0  # n-c=1 < k=2: every pair contains a correct one
    assert pass_at_k(5, 5, 5) == 1.0
    # Large n stays finite: C(200,100) ~ 9e58 would overflow as a float ratio on the way.
    # n=200, c=1, k=100: 1 - C(199,100)/C(200,100) = 1 - 100/200 = 0.5
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)


def test_pass_at_k_errors():
    with pytest.raises(ValueError, match=r"k \(6\) larger than samples taken \(n=5\)"):
        pass_at_k(5, 1, 6)
    with pytest.raises(ValueError, match=r"c \(6\)"):
        pass_at_k(5, 6, 1)
    for args in ((-1, 0, 1), (5, -1, 1), (5, 1, -1), (5, 1, 0), (5.0, 1, 1), (True, 1, 1)):
        with pytest.raises(WorkbenchError):  # a ValueError subclass
            pass_at_k(*args)


def test_pass_at_1_mean_and_stderr():
    # per-question fractions: 2/4 = 0.5, 4/4 = 1, 0/4 = 0 -> mean 0.5
    # sample variance: (0^2 + 0.5^2 + 0.5^2) / (3-1) = 0.25; stderr = sqrt(0.25 / 3) = 0.288675...
    mean, stderr = pass_at_1([[True, True, False, False], [True] * 4, [False] * 4])
    assert mean == pytest.approx(0.5)
    assert stderr == pytest.approx(math.sqrt(0.25 / 3))
    # Questions may have different sample counts: 1/1 and 1/2 -> mean 0.75
    assert pass_at_1([[True], [True, False]])[0] == pytest.approx(0.75)
    # One question: a mean but no spread to estimate.
    mean, stderr = pass_at_1([[True, False, False, False]])
    assert mean == pytest.approx(0.25) and math.isnan(stderr)
    with pytest.raises(WorkbenchError):
        pass_at_1([])
    with pytest.raises(WorkbenchError):
        pass_at_1([[True], []])


def test_mean_pass_at_k():
    # question 1: n=4, c=1, k=2 -> 0.5 (above); question 2: n=4, c=0 -> 0; mean 0.25
    mean, _ = mean_pass_at_k([[True, False, False, False], [False] * 4], k=2)
    assert mean == pytest.approx(0.25)
    with pytest.raises(ValueError, match="larger than samples taken"):
        mean_pass_at_k([[True, False]], k=3)


def test_majority_vote_counts_normalised_answers():
    assert majority_vote(["7", " 4", "4 ", "7", "4"]) == "4"  # 4 x3 (whitespace stripped), 7 x2
    assert majority_vote(["x  +  1", "x + 1", "y"]) == "x + 1"  # inner whitespace collapsed
    assert majority_vote(["A", "a", "b"], key=str.lower) == "a"  # a custom key
    assert majority_vote(["A", "a", "b"]) == "A"  # no case folding by default: a 1-1-1 tie


def test_majority_vote_breaks_ties_by_first_occurrence():
    assert majority_vote(["3", "5", "5", "3"]) == "3"  # 2-2: "3" appeared first (index 0)
    assert majority_vote([None, "5", "3", "3", "5"]) == "5"  # 2-2: "5" at index 1, "3" at 2
    assert majority_vote(["b", "a"]) == "b"  # not alphabetical
    # The same votes in any order of arrival within the tie pick the earliest, every time.
    assert {majority_vote(["9", "1", "1", "9"]) for _ in range(20)} == {"9"}


def test_majority_vote_without_answers():
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None
    assert majority_vote(["", "   ", None]) is None  # empty extractions are not answers
    assert majority_vote([None, None, "2"]) == "2"  # one answer beats no answers


def test_cons_at_k():
    assert cons_at_k(["1", "2", "2"], lambda a: a == "2") is True
    assert cons_at_k(["1", "1", "2"], lambda a: a == "2") is False  # right answer, outvoted
    assert cons_at_k([None, None], lambda a: True) is False  # no answer counts as wrong
    # Three questions -> [1, 0, 1]: mean 2/3; variance ((1/3)^2 * 2 + (2/3)^2) / 2 = 1/3;
    # stderr = sqrt((1/3) / 3) = 1/3
    mean, stderr = mean_cons_at_k([["4", "4", "5"], ["1", "2", "2"], [None, "9"]], ["4", "1", "9"],
                                  lambda answer, gold: answer == gold)
    assert mean == pytest.approx(2 / 3)
    assert stderr == pytest.approx(1 / 3)
    with pytest.raises(WorkbenchError):
        mean_cons_at_k([["1"]], ["1", "2"], lambda a, g: a == g)


def test_mean_and_stderr():
    # [1, 2, 3, 4]: mean 2.5; sample variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3
    mean, stderr = mean_and_stderr([1, 2, 3, 4])
    assert mean == pytest.approx(2.5)
    assert stderr == pytest.approx(math.sqrt(5 / 3 / 4))
    assert all(math.isnan(x) for x in mean_and_stderr([]))


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_more_data():
    small = [0.0, 1.0] * 20  # mean 0.5
    large = [0.0, 1.0] * 200
    lo_s, hi_s = bootstrap_ci(small, iters=500)
    lo_l, hi_l = bootstrap_ci(large, iters=500)
    assert lo_s < 0.5 < hi_s and lo_l < 0.5 < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 2  # 10x the data: about 1/sqrt(10) of the width
    # For a 0/1 mean the normal-theory half-width is 1.96 * sqrt(0.25 / 40) = 0.155 (n=40).
    assert (hi_s - lo_s) / 2 == pytest.approx(0.155, abs=0.04)


def test_bootstrap_ci_is_deterministic_and_validates():
    values = [0.1, 0.5, 0.9, 0.3]
    assert bootstrap_ci(values, iters=200, seed=3) == bootstrap_ci(values, iters=200, seed=3)
    assert bootstrap_ci([0.3], iters=50) == (0.3, 0.3)  # nothing to resample
    with pytest.raises(WorkbenchError):
        bootstrap_ci([])
    with pytest.raises(WorkbenchError):
        bootstrap_ci(values, alpha=1.5)
