"""Estimators for sampled evaluation: pass@k, pass@1 from k samples, cons@k, bootstrap intervals.

    from workbench.analysis.estimators import pass_at_k, pass_at_1, majority_vote, cons_at_k
    pass_at_k(n=16, c=3, k=4)                      # 1 - C(13, 4) / C(16, 4) = 0.6071...
    pass_at_1([[True, False, True, True], [False] * 4])   # (0.375, 0.375): mean, stderr
    cons_at_k(["12", " 12", "7", None], lambda a: a == "12")   # True: "12" wins the vote

The evaluation protocol (R1_NOTES.md): pass@1 is estimated from k samples per question at
temperature 0.6 as the mean over questions of the fraction correct; cons@k is a majority vote
over k samples; pass@k uses the unbiased estimator of Chen et al. (2021), which is *not*
"any of the first k samples correct" (that has higher variance and depends on sample order).

Standard errors are across questions (sample standard deviation / sqrt(questions)), NaN with
fewer than two questions. Pure Python, stdlib only: the app and notebooks import it without torch.
"""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Callable, Sequence
from typing import Any

from workbench.errors import WorkbenchError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which equals the ratio of binomials but never
    forms them: C(200, 100) alone overflows a float.
    """
    try:  # operator.index also accepts numpy integers, and refuses floats
        if any(isinstance(v, bool) for v in (n, c, k)):
            raise TypeError
        n, c, k = operator.index(n), operator.index(c), operator.index(k)
    except TypeError:
        raise WorkbenchError(f"n, c and k must be integers, got n={n!r}, c={c!r}, k={k!r}") from None
    if min(n, c, k) < 0:
        raise WorkbenchError(f"n, c and k must be non-negative, got n={n}, c={c}, k={k}")
    if k == 0:
        raise WorkbenchError("k must be at least 1 (pass@0 is undefined)")
    if c > n:
        raise WorkbenchError(f"c ({c}) larger than samples taken (n={n}): more correct samples than samples")
    if k > n:
        raise WorkbenchError(f"k ({k}) larger than samples taken (n={n}): pass@{k} needs at least {k} samples per question")
    if n - c < k:
        return 1.0  # every draw of k samples contains a correct one
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_pass_at_k(per_question_correct: Sequence[Sequence[bool]], k: int) -> tuple[float, float]:
    """(mean, stderr) over questions of pass@k; each question's list holds its samples' correctness.

    Questions may have different numbers of samples; each needs at least k.
    """
    if not per_question_correct:
        raise WorkbenchError("no questions to estimate pass@k from")
    values = []
    for i, samples in enumerate(per_question_correct):
        if not samples:
            raise WorkbenchError(f"question {i} has no samples")
        values.append(pass_at_k(len(samples), sum(bool(s) for s in samples), k))
    return mean_and_stderr(values)


def pass_at_1(per_question_correct: Sequence[Sequence[bool]]) -> tuple[float, float]:
    """(mean, stderr) of pass@1 estimated from all samples: mean over questions of c_i / n_i."""
    return mean_pass_at_k(per_question_correct, 1)


def normalize_answer(answer: str) -> str:
    """The form answers are compared in for voting: surrounding and repeated whitespace removed.

    Deliberately no case folding or number parsing: "X" and "x" can be different answers. Pass a
    task-specific `key` to `majority_vote` for more (e.g. math-verify canonical forms).
    """
    return " ".join(str(answer).split())


def majority_vote(answers: Sequence[str | None], key: Callable[[str], str] = normalize_answer,
                  same: Callable[[str, str], bool] | None = None) -> str | None:
    """The most common answer after `key`, ignoring None (no answer extracted) and empty answers.

    ``same(a, b)``, when given, groups answers that a task judges equal although their text
    differs ("0.1575" and "\\frac{63}{400}"): each answer joins the first group whose first
    member it equals. Ties go to the group whose first occurrence comes earliest, so the result
    does not depend on dict or Counter ordering; the winner is that group's first answer. None when
    no sample produced an answer.
    """
    groups: list[list] = []  # [first answer, its key, count, first index]
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        normalized = key(answer)
        if normalized == "":
            continue
        for group in groups:
            if group[1] == normalized or (same is not None and same(group[0], answer)):
                group[2] += 1
                break
        else:
            groups.append([answer, normalized, 1, i])
    if not groups:
        return None
    return min(groups, key=lambda g: (-g[2], g[3]))[1 if same is None else 0]


def cons_at_k(votes: Sequence[str | None], is_correct: Callable[[str], bool],
              key: Callable[[str], str] = normalize_answer, same: Callable[[str, str], bool] | None = None) -> bool:
    """Whether the majority answer of `votes` (all of them: pass the first k for cons@k) is correct;
    `same` groups answers as in `majority_vote`.

    A question where no sample produced an answer counts as wrong.
    """
    winner = majority_vote(votes, key=key, same=same)
    return winner is not None and bool(is_correct(winner))


def mean_cons_at_k(votes_per_question: Sequence[Sequence[str | None]], golds: Sequence[Any],
                   is_correct: Callable[[str, Any], bool],
                   key: Callable[[str], str] = normalize_answer,
                   same: Callable[[str, str, Any], bool] | None = None) -> tuple[float, float]:
    """(mean, stderr) of cons@k over questions; `is_correct(answer, gold)` scores one answer and
    `same(a, b, gold)`, if given, groups a question's votes (the task's own equality)."""
    if len(votes_per_question) != len(golds):
        raise WorkbenchError(f"{len(votes_per_question)} questions with votes but {len(golds)} gold answers")
    if not golds:
        raise WorkbenchError("no questions to estimate cons@k from")
    values = [float(cons_at_k(votes, lambda a, g=gold: is_correct(a, g), key=key,
                              same=None if same is None else (lambda a, b, g=gold: same(a, b, g))))
              for votes, gold in zip(votes_per_question, golds)]
    return mean_and_stderr(values)


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error (sample std / sqrt(n)); stderr is NaN for fewer than 2 values."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = math.fsum(values) / n
    if n < 2:
        return mean, float("nan")
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def bootstrap_ci(values: Sequence[float], iters: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) confidence interval for the mean of `values`.

    Resamples questions with replacement, so it reflects question-to-question spread (use the
    per-question scores, not the raw samples). Deterministic for a given seed.
    """
    if not values:
        raise WorkbenchError("bootstrap_ci needs at least one value")
    if not 0 < alpha < 1:
        raise WorkbenchError(f"alpha must be between 0 and 1, got {alpha!r}")
    if iters < 1:
        raise WorkbenchError(f"iters must be >= 1, got {iters!r}")
    rng = random.Random(seed)
    n = len(values)
    means = sorted(math.fsum(rng.choices(values, k=n)) / n for _ in range(iters))
    lo = means[min(iters - 1, max(0, math.floor(alpha / 2 * iters)))]
    hi = means[min(iters - 1, max(0, math.ceil((1 - alpha / 2) * iters) - 1))]
    return lo, hi
