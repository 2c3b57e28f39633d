"""The aha lab's worlds: synthetic tasks where checking a candidate is much cheaper than solving.

R1-Zero's "aha moment" is RL amplifying a behaviour the base policy already shows now and then,
because it raises the chance of a correct answer (Gandhi et al. 2025, "Cognitive behaviors that
enable self-improving reasoners"). A world here is small enough to pretrain a model on from scratch
in minutes, and built so that the behaviour *can* pay:

``pairsum`` (the search world, R1's analogue): "pick two of 17 42 8 33 with sum 50". Exactly one
pair of the four numbers hits the target. Answering at once means doing all six additions in one
forward pass, which a tiny model cannot; proposing a pair, adding it in writing, checking the sum
against the target and, if wrong, saying "wait" and trying another is cheap and always succeeds.

``pairsum_blind`` (the control where verification cannot help): the same numbers, the same hidden
pair, but the target is not in the question. A check still compares a sum with the target in the
corpus (its writer knows it), but the model cannot see it, so re-checking gives no information.

``slips`` (the simpler world): "what is 46+8". Solutions work the columns ("6+8=14, 4+1=5, so 54");
a share ``noise`` of first answers slip (off by 1 or 10), as the prototype in ../shared/FINDINGS.md
did. A check reads each digit of the answer against its column ("let me check: 4 and 4 ok, 5 and 5
ok, it is right."; after a slip "4 and 3 not the same, a mistake. wait," and the sum is worked
again). Here checking pays only against slips the policy could also learn to stop
making: the control is a corpus without slips (``noise`` 0), where a check never catches anything.

A generator writes worked solutions in three styles (``STYLES``):

- ``direct``: "<think>it is 17+33.</think> <answer>17+33</answer>";
- ``step``: the chosen pair's sum written out: "<think>17+33=50.</think> <answer>17+33</answer>";
- ``check``: a search with self-verification and retries, in R1's reflective words:
  "<think>17+42=59. wait, 59 is not 50. 8+33=41, that is wrong. 17+33=50. let me check: 50 is 50,
  it is right.</think> <answer>17+33</answer>".

``priming`` is the share of ``check`` solutions in the pretraining corpus (0 = the unprimed
control); the rest are split evenly between ``direct`` and ``step``. ``noise`` is the share of
``direct``/``step`` solutions with an honest slip: a wrong pair, as real text has wrong answers.
A ``check`` solution never ends wrong: its checks are what catch slips.

    from workbench.lab.world import World, corpus
    world = World("pairsum", priming=0.1)
    lines = corpus(world, n=40_000, seed=0)          # pretraining text, one solution per line
    task = world.task(seed=0)                          # a workbench Task: items, held-out split, verifier
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from random import Random

from workbench.errors import WorkbenchError
from workbench.tasks.base import ProceduralTask
from workbench.templates import render_prompt

WORLDS = {
    "pairsum": "pick the two of four numbers that sum to a target (checking a pair is cheap; guessing is not)",
    "pairsum_blind": "the pairsum control: the target is hidden, so checking a sum gives no information",
    "slips": "a+b with a 10-99, b 1-9, where first answers slip; a check (reading the columns again) catches slips",
}
STYLES = ("direct", "step", "check")
N_NUMBERS = 4
LOW, HIGH = 1, 19  # the numbers: few enough addition facts that a tiny model learns them all

_PAIR = re.compile(r"^\s*(\d+)\s*\+\s*(\d+)\s*$")
_CLAIM = re.compile(r"(\d+)\s*\+\s*(\d+)\s*=\s*(\d+)")
_REJECT = re.compile(r"\b(?:not|wrong)\b")
_ACCEPT = re.compile(r"\b(?:right|ok)\b")
_WAIT = re.compile(r"\bwait\b")


def _share(flags: list[bool]) -> float | None:
    """The share of True in ``flags``; None when there are none (no check to judge)."""
    return sum(flags) / len(flags) if flags else None


@dataclass(frozen=True)
class World:
    """One world and its corpus knobs.

    name: a key of ``WORLDS``. priming: share of ``check``-style solutions in the corpus, in [0, 1].
    noise: share of ``direct``/``step`` solutions whose pair is wrong (an honest slip), in [0, 1].
    Raises WorkbenchError for an unknown name or a knob outside [0, 1].
    """

    name: str = "pairsum"
    priming: float = 0.1
    noise: float = 0.1

    def __post_init__(self):
        if self.name not in WORLDS:
            raise WorkbenchError(f"unknown lab world {self.name!r}; valid choices: {', '.join(WORLDS)}")
        for knob in ("priming", "noise"):
            value = getattr(self, knob)
            if not 0.0 <= value <= 1.0:
                raise WorkbenchError(f"lab world {knob} must be in [0, 1], got {value}")

    @property
    def hidden_target(self) -> bool:
        return self.name == "pairsum_blind"

    def task(self, seed: int = 0, heldout_fraction: float = 0.2):
        """The world's questions as a workbench Task (train and held-out splits, verifier)."""
        if self.name == "slips":
            return SlipsTask(seed=seed, heldout_fraction=heldout_fraction)
        return PairSumTask(self.name, seed=seed, heldout_fraction=heldout_fraction)


def puzzle(rng: Random) -> tuple[list[int], tuple[int, int], int]:
    """(numbers, (i, j) of the one pair that hits the target, target), drawn from ``rng``."""
    while True:
        numbers = rng.sample(range(LOW, HIGH + 1), N_NUMBERS)
        i, j = sorted(rng.sample(range(N_NUMBERS), 2))
        target = numbers[i] + numbers[j]
        hits = [p for p in combinations(range(N_NUMBERS), 2) if numbers[p[0]] + numbers[p[1]] == target]
        if hits == [(i, j)]:
            return numbers, (i, j), target


def question(world_name: str, numbers: list[int], target: int) -> str:
    listed = " ".join(map(str, numbers))
    if world_name == "pairsum_blind":
        return f"pick two of {listed}"
    return f"pick two of {listed} with sum {target}"


def pair_text(numbers: list[int], pair: tuple[int, int]) -> str:
    return f"{numbers[pair[0]]}+{numbers[pair[1]]}"


def _wrong_pair(numbers, right, rng) -> tuple[int, int]:
    return rng.choice([p for p in combinations(range(len(numbers)), 2) if p != right])


def _wrong_check(s: int, target: int, rng: Random) -> str:
    # Different phrasings of "this sum is not the target", each one a documented backtracking or
    # verification pattern of workbench.analysis.traces (the paper's words, nothing world-specific).
    return rng.choice([
        f"wait, {s} is not {target}.",
        f"{s} is not {target}, that is wrong.",
        f"let me check: {s} is not {target}. wait,",
    ])


def solution(world: World, numbers: list[int], right: tuple[int, int], target: int, style: str,
             rng: Random) -> str:
    """The completion text (``<think>...</think> <answer>...</answer>``) for one puzzle in ``style``.

    ``direct`` and ``step`` answer the right pair, except with probability ``world.noise`` a wrong
    one; ``check`` searches the pairs in order (the first number with each later one, then the
    second, ...), checking each sum against the target and rejecting it, until the right pair,
    which it checks and accepts. The order is systematic, as a person searching by hand would,
    so the search itself is learnable: only the checks decide where it stops.
    """
    if style not in STYLES:
        raise WorkbenchError(f"unknown solution style {style!r}; valid choices: {', '.join(STYLES)}")
    if style in ("direct", "step"):
        pair = _wrong_pair(numbers, right, rng) if rng.random() < world.noise else right
        text = pair_text(numbers, pair)
        s = numbers[pair[0]] + numbers[pair[1]]
        think = f"it is {text}." if style == "direct" else f"{text}={s}."
        return f"<think>{think}</think> <answer>{text}</answer>"
    pairs = list(combinations(range(len(numbers)), 2))
    tries = pairs[:pairs.index(right)]
    parts = []
    for p in tries:
        s = numbers[p[0]] + numbers[p[1]]
        parts.append(f"{pair_text(numbers, p)}={s}. {_wrong_check(s, target, rng)}")
    parts.append(f"{pair_text(numbers, right)}={target}. let me check: {target} is {target}, it is right.")
    return f"<think>{' '.join(parts)}</think> <answer>{pair_text(numbers, right)}</answer>"


def corpus(world: World, n: int, seed: int = 0, heldout_fraction: float = 0.2) -> list[str]:
    """``n`` pretraining lines "<question>\\n<solution>", from the task's train split only.

    Styles are drawn per line: ``check`` with probability ``world.priming``, else ``direct`` or
    ``step`` with equal chance. Deterministic in (world, n, seed).
    """
    task = world.task(seed=seed, heldout_fraction=heldout_fraction)
    rng = Random(f"corpus:{world}:{seed}")
    lines = []
    for item in task.items("train", n):
        meta = item["metadata"]
        style = "check" if rng.random() < world.priming else rng.choice(("direct", "step"))
        if world.name == "slips":
            body = slips_solution(world, meta["a"], meta["b"], style, rng)
        else:
            body = solution(world, meta["numbers"], tuple(meta["pair"]), meta["target"], style, rng)
        # The prompt exactly as GRPO and evaluation will render it (template "plain").
        lines.append(render_prompt("plain", item["question"], None) + body)
    return lines


class PairSumTask(ProceduralTask):
    """The pairsum worlds as a workbench Task. Answers are "a+b" with a, b two of the numbers.

    Score 1.0 when the two numbers are two different entries of the list whose sum is the target
    (in either order), else 0.0. The held-out split is by question text (``ProceduralTask``).
    """

    answer_kind = "expression"
    checker = "two different entries of the list whose sum is the target, in either order"

    def __init__(self, world_name: str = "pairsum", seed: int = 0, heldout_fraction: float = 0.2):
        if world_name not in WORLDS:
            raise WorkbenchError(f"unknown lab world {world_name!r}; valid choices: {', '.join(WORLDS)}")
        self.name = world_name
        self.description = WORLDS[world_name]
        super().__init__(seed=seed, heldout_fraction=heldout_fraction)

    def _generate(self, split_seed: int, index: int) -> dict:
        numbers, pair, target = puzzle(Random(f"{self.name}:{split_seed}:{index}"))
        return {"question": question(self.name, numbers, target), "answer": pair_text(numbers, pair),
                "metadata": {"numbers": numbers, "pair": list(pair), "target": target}}

    def _verify(self, answer: str, item: dict) -> float:
        m = _PAIR.match(answer)
        if not m:
            return 0.0
        a, b = int(m.group(1)), int(m.group(2))
        numbers, target = list(item["metadata"]["numbers"]), item["metadata"]["target"]
        if a not in numbers:
            return 0.0
        rest = numbers[:numbers.index(a)] + numbers[numbers.index(a) + 1:]
        return 1.0 if b in rest and a + b == target else 0.0

    def check_metrics(self, completion: str, item: dict) -> dict:
        """Faithfulness of the checks in one completion, verified exactly (the world knows the truth).

        A check is a claim "a+b=s" in the chain of thought followed, before the next claim, by a
        verdict: reject ("not", "wrong") or accept ("right", "ok"); a claim with neither is no check.
        Returns shares over this completion's checks (None when it has none):
        ``arithmetic_right`` (a+b really is s), ``verdict_follows`` (rejected iff s differs from the
        target), ``faithful`` (both, with a and b two entries of the list); and over its "wait"s
        (None when it has none): ``wait_after_correct``, the share that follow a claim whose pair
        is the right answer, i.e. a spurious wait.
        """
        from workbench.rewards.extract import split_think_answer

        think = split_think_answer(completion)["think"] or ""
        numbers, target = list(item["metadata"]["numbers"]), item["metadata"]["target"]
        claims = list(_CLAIM.finditer(think))
        right, follows, faithful, waits, spurious = [], [], [], 0, 0
        for i, m in enumerate(claims):
            segment = think[m.end(): claims[i + 1].start() if i + 1 < len(claims) else len(think)]
            a, b, s = (int(g) for g in m.groups())
            correct_pair = self._verify(f"{a}+{b}", item) == 1.0
            n_waits = len(_WAIT.findall(segment))
            waits += n_waits
            spurious += n_waits if correct_pair else 0
            verdict = "reject" if _REJECT.search(segment) else "accept" if _ACCEPT.search(segment) else None
            if verdict is None:
                continue
            in_list = a in numbers and b in numbers[:numbers.index(a)] + numbers[numbers.index(a) + 1:]
            right.append(a + b == s)
            follows.append((verdict == "accept") == (s == target))
            faithful.append(right[-1] and follows[-1] and in_list)

        return {"arithmetic_right": _share(right), "verdict_follows": _share(follows), "faithful": _share(faithful),
                "wait_after_correct": spurious / waits if waits else None}


# --- The slips world: arithmetic whose first answers slip ------------------------------------------


def _slip(value: int, rng: Random) -> int:
    return value + rng.choice((-10, -1, 1, 10))


def worked_sum(a: int, b: int, result: int) -> str:
    """Column addition of a (two digits) and b (one digit), units first, ending on ``result``
    (the true sum, or a slipped one): "6+8=14, 4+1=5, so 54". The units column is written with two
    digits ("3+4=07"), so every step of the work sits at a fixed distance from the digits it copies:
    a tiny model learns copying by position in minutes, copying by content ("the digit after the
    space") it often does not (measured: tens-digit copy 46% with a varying offset)."""
    units = a % 10 + b
    return f"{a % 10}+{b}={units:02d}, {a // 10}+{units // 10}={a // 10 + units // 10}, so {result}"


def column_reading(a: int, b: int, x: int) -> str:
    """The check of a worked sum "... so x": read each digit of x against the column it came from,
    units first ("let me check: 4 and 4 ok, 5 and 5 ok, it is right."), and at the first digit that
    differs say so ("4 and 3 not the same, a mistake. wait,"). The column digit is copied from a
    fixed distance; the verdict compares two single tokens.

    Why this check and not a different computation (subtracting b back, the lab's first check): a
    tiny model learned that subtraction as a copy of a (the result it usually is), and its verdict
    compared two-digit numbers by their units only, so the check caught few slips. A digit against
    its column is the check a person makes against a transcription slip; the verdict still has to
    be learned, and at 3 epochs it was not (P(not) 0.11 after equal and unequal digits alike),
    at 6 it was (0.03 against 0.73): see the README's lab notes.
    """
    units = a % 10 + b
    column_units, column_tens = units % 10, a // 10 + units // 10
    text = f"let me check: {column_units} and {x % 10}"
    if column_units != x % 10:
        return text + " not the same, a mistake. wait,"
    text += f" ok, {column_tens} and {x // 10}"
    if column_tens != x // 10:
        return text + " not the same, a mistake. wait,"
    return text + " ok, it is right."


def slips_solution(world: World, a: int, b: int, style: str, rng: Random) -> str:
    """The completion for "what is a+b" in ``style``. With probability ``world.noise`` the first
    answer slips (off by 1 or 10) after columns worked right, as in the prototype FINDINGS.md
    describes. ``direct`` answers at once; ``step`` works the columns (units, then tens with the
    carry); both keep a slip. ``check`` works the columns, then reads each digit of the answer
    against its column (``column_reading``); a slip shows as a digit that differs, so it says
    "wait" and works the sum again (a second try never slips); a right sum is confirmed."""
    if style not in STYLES:
        raise WorkbenchError(f"unknown solution style {style!r}; valid choices: {', '.join(STYLES)}")
    s = a + b
    first = _slip(s, rng) if rng.random() < world.noise else s
    if style == "direct":
        return f"<think>it is {first}.</think> <answer>{first}</answer>"
    if style == "step":
        return f"<think>{worked_sum(a, b, first)}.</think> <answer>{first}</answer>"
    parts = []
    if first != s:
        parts.append(f"{worked_sum(a, b, first)}. {column_reading(a, b, first)}")
    parts.append(f"{worked_sum(a, b, s)}. {column_reading(a, b, s)}")
    return f"<think>{' '.join(parts)}</think> <answer>{s}</answer>"


_RESULT = re.compile(r"\bso (\d+)")
# "so x. let me check: u and v ok, t and w ok, it is right." / "... u and v not the same, a mistake."
_SLIPS_CHECK = re.compile(r"\bso (\d+)\s*\.?\s*let me check\s*:((?:\s*\d+ and \d+ (?:ok|not[^,.]*),?)+)([^.]*)")
_DIGITS = re.compile(r"(\d+) and (\d+) (ok|not)")
_SLIPS_REJECT = re.compile(r"\b(?:not|wrong|mistake)\b")


class SlipsTask(ProceduralTask):
    """The slips world as a workbench Task: "what is a+b", a in 10-99, b in 1-9; the answer is a+b."""

    answer_kind = "number"
    checker = "the integer a+b"
    name = "slips"
    description = WORLDS["slips"]

    def _generate(self, split_seed: int, index: int) -> dict:
        rng = Random(f"slips:{split_seed}:{index}")
        a, b = rng.randint(10, 99), rng.randint(1, 9)
        return {"question": f"what is {a}+{b}", "answer": str(a + b), "metadata": {"a": a, "b": b}}

    def _verify(self, answer: str, item: dict) -> float:
        try:
            return 1.0 if int(answer.strip()) == item["metadata"]["a"] + item["metadata"]["b"] else 0.0
        except ValueError:
            return 0.0

    def check_metrics(self, completion: str, item: dict) -> dict:
        """As ``PairSumTask.check_metrics``, for checks "so x. let me check: u and v ok, t and w ..."
        (``column_reading``): each pair sets a column's digit (u: the units column's last digit; t:
        the tens column's result) beside x's digit (v: x's units; w: the rest of x), and says "ok" or
        "not". A check is judged when it ends in a verdict: a reject ("not", "wrong", "mistake") or
        an accept ("right", "ok" on every pair). Shares over the judged checks: ``arithmetic_right``
        (every column digit written is the true one, i.e. the digits of a+b), ``verdict_follows``
        (every pair's "ok"/"not" matches whether its two digits are equal), ``faithful`` (both, and
        every x digit copied from x); ``wait_after_correct``: the share of "wait"s whose latest sum
        ("so x") was right. Values None where there is nothing to judge."""
        from workbench.rewards.extract import split_think_answer

        think = split_think_answer(completion)["think"] or ""
        s = item["metadata"]["a"] + item["metadata"]["b"]
        truth = (s % 10, s // 10)
        right, follows, faithful, waits, spurious = [], [], [], 0, 0
        for m in _SLIPS_CHECK.finditer(think):
            x, pairs = int(m.group(1)), _DIGITS.findall(m.group(2))
            rest = m.group(3)
            if any(v == "not" for _, _, v in pairs) or _SLIPS_REJECT.search(rest):
                verdict = "reject"
            elif _ACCEPT.search(rest):
                verdict = "accept"
            else:
                continue  # a check cut off before its verdict
            right.append(all(int(c) == t for (c, _, _), t in zip(pairs, truth)))
            follows.append(all((v == "ok") == (c == d) for c, d, v in pairs)
                           and (verdict == "accept") == all(c == d for c, d, _ in pairs))
            copied = all(int(d) == xd for (_, d, _), xd in zip(pairs, (x % 10, x // 10)))
            faithful.append(right[-1] and follows[-1] and copied)
        for w in _WAIT.finditer(think):
            sums = _RESULT.findall(think[: w.start()])
            waits += 1
            spurious += bool(sums) and int(sums[-1]) == s

        return {"arithmetic_right": _share(right), "verdict_follows": _share(follows), "faithful": _share(faithful),
                "wait_after_correct": spurious / waits if waits else None}
