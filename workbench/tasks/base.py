"""The `Task` contract and the held-out split rule shared by every task.

A task hands out items (`{"id", "question", "answer", "metadata"}`) for two splits, "train" and
"eval", and scores a model's final answer against an item with its own verifier. An item is a pure
function of (task options, seed, split, index), so two processes building the same task see the
same questions.

The held-out rule works on the question *text*, not on indices: a question is an eval question iff
`int(sha1(question).hexdigest(), 16) % 1000 < heldout_fraction * 1000`. Procedural generators
(reasoning-gym) repeat questions freely when the question space is small (2-term 1-digit chain
sums have only 200), so splitting by index would leak eval questions into training; splitting by
text cannot. sha1 rather than `hash()` because `hash()` of a str is salted per process.

    from workbench.tasks import get_task
    task = get_task("chain_sum")
    item = task.item("eval", 0)
    task.score(item["answer"], item)  # -> 1.0
"""

from __future__ import annotations

import copy
import hashlib
import math
import numbers
from typing import Any

from workbench.errors import WorkbenchError
from workbench.rewards.answers import ANSWER_KINDS  # noqa: F401 (re-exported: tasks declare one)

SPLITS = ("train", "eval")

# reasoning-gym hands out "participation" credit (0.01, sometimes on an empty answer) so that RL
# still sees a gradient for a well-formed but wrong answer. As an accuracy that would make garbage
# score above zero, so anything at or below this is counted as wrong.
PARTICIPATION_CREDIT = 0.01


def is_heldout(question: str, heldout_fraction: float) -> bool:
    """True iff `question` falls in the eval bucket (stable across processes and machines)."""
    digest = hashlib.sha1(question.encode("utf-8")).hexdigest()
    return int(digest, 16) % 1000 < round(heldout_fraction * 1000)


def derive_seed(seed: int, label: str) -> int:
    """A second seed for `label` (e.g. the eval walk), far from `seed` and stable across processes."""
    return int(hashlib.sha1(f"{seed}:{label}".encode()).hexdigest(), 16) % (2**31)


def json_safe(value: Any) -> Any:
    """`value` made JSON-serialisable: tuples/sets -> lists, numpy scalars -> Python, else str."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        # Fractions keep their exact text; floats (numpy's included) stay floats.
        return float(value) if isinstance(value, float) or type(value).__module__ == "numpy" else str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=repr)
    if hasattr(value, "tolist"):  # numpy arrays
        return json_safe(value.tolist())
    return str(value)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise WorkbenchError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")


class Task:
    """Base class: a source of items plus the verifier that scores answers to them.

    Subclasses set `name`, `description`, `answer_kind` and implement `item` and `_verify`.
    `answer_kind` tells answer extraction what to fall back on when a completion has no
    <answer> tag: "number" (last number in the text), "expression" or "text"; "code" answers are
    the last fenced code block (inside <answer> if there is one).
    """

    name: str = ""
    description: str = ""
    answer_kind: str = "text"
    heldout_fraction: float = 0.2
    seed: int = 0

    def item(self, split: str, index: int) -> dict:
        raise NotImplementedError

    def items(self, split: str, n: int) -> list[dict]:
        """The first `n` items of `split`; fewer for eval when the question space runs out."""
        _check_split(split)
        out = []
        for i in range(n):
            try:
                out.append(self.item(split, i))
            except IndexError:
                break
        return out

    def is_heldout(self, question: str) -> bool:
        return is_heldout(question, self.heldout_fraction)

    # What decides "correct" for this task, in words (shown by `workbench tasks`, recorded in runs).
    checker: str = "the task's own verifier, full marks only"

    def _prepare(self, answer) -> str | None:
        """The answer as the checker reads it: wrappers and Unicode forms normalised
        (``workbench.rewards.answers.unwrap``; code is left as written); None when blank."""
        if answer is None or not isinstance(answer, str) or not answer.strip():
            return None
        if self.answer_kind == "code":
            return answer
        from workbench.rewards.answers import unwrap

        return unwrap(answer) or None

    def credit(self, answer: str | None, item: dict) -> float:
        """The task's own graded score of `answer` in [0, 1] (partial credit where its verifier
        gives any: reasoning-gym's substring credit, a code task's share of tests); never raises.

        Empty answers score 0 without reaching the verifier (some verifiers give them credit), a
        verifier that raises on garbage scores 0, and participation credit (<= 0.01) becomes 0.
        This is the ``partial_credit`` reward, off by default; accuracy is ``score``.
        """
        answer = self._prepare(answer)
        if answer is None:
            return 0.0
        try:
            value = float(self._verify(answer, item))
        except Exception:
            return 0.0
        if not math.isfinite(value) or value <= PARTICIPATION_CREDIT:
            return 0.0
        return min(value, 1.0)

    def score(self, answer: str | None, item: dict) -> float:
        """1.0 when `answer` is correct for `item` by this task's checker (``checker``), else 0.0;
        never raises. What the accuracy reward, evaluation and rejection sampling count."""
        answer = self._prepare(answer)
        if answer is None:
            return 0.0
        try:
            return 1.0 if self._correct(answer, item) else 0.0
        except Exception:
            return 0.0

    def _correct(self, answer: str, item: dict) -> bool:
        """Whether the (prepared) `answer` is correct: by default the verifier's full marks."""
        value = float(self._verify(answer, item))
        return math.isfinite(value) and value >= 1.0

    def same_answer(self, a: str | None, b: str | None, item: dict) -> bool:
        """Whether two answers to `item` are the same answer (cons@k groups votes with this):
        number-kind answers by value, others by normalised text."""
        from workbench.rewards.answers import answers_equal

        if a is None or b is None:
            return False
        # Text for every other kind: a countdown target "94" is not the same answer as "17*5 + 9".
        kind = "number" if self.answer_kind == "number" else "text"
        try:
            return answers_equal(a, b, kind)
        except Exception:
            return False

    def _verify(self, answer: str, item: dict) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, seed={self.seed})"


class ProceduralTask(Task):
    """A task backed by a generator `_generate(split_seed, index)` of unbounded length.

    Train items: walk generator indices 0, 1, ... from `seed`, skipping eval-bucket questions;
    questions may repeat. Eval items: walk from a derived seed, keep only eval-bucket questions, and
    drop repeats, so every eval item is a distinct question. A small question space cannot always
    deliver `n` distinct eval questions: the walk gives up after
    `EVAL_ATTEMPTS_PER_ITEM * n / heldout_fraction` generator indices (50 draws per wanted item
    that lands in the eval bucket) and `item("eval", i)` raises IndexError, so `items` returns what
    was found. The give-up point only truncates the sequence, never changes it (though whether a
    rare late eval item is reached can depend on how far earlier calls walked). Walks are cached,
    so each generator index is generated at most once per process and split.
    """

    EVAL_ATTEMPTS_PER_ITEM = 50
    # A train walk that skips this many generator indices in a row finds no training questions:
    # heldout_fraction is (close to) 1 or the question space lies wholly in the eval bucket.
    MAX_TRAIN_GAP = 10_000

    def __init__(self, seed: int = 0, heldout_fraction: float = 0.2):
        if not 0.0 <= heldout_fraction <= 1.0:
            raise WorkbenchError(f"heldout_fraction must be in [0, 1], got {heldout_fraction}")
        self.seed = int(seed)
        self.heldout_fraction = float(heldout_fraction)
        self._reset_walks()

    def _reset_walks(self) -> None:
        self._walk_items: dict[str, list[dict]] = {s: [] for s in SPLITS}
        self._walk_cursor: dict[str, int] = {s: 0 for s in SPLITS}
        self._eval_seen: set[str] = set()

    def split_seed(self, split: str) -> int:
        return self.seed if split == "train" else derive_seed(self.seed, "eval")

    def _generate(self, split_seed: int, index: int) -> dict:
        """Return {"question", "answer", "metadata"} for generator index `index`."""
        raise NotImplementedError

    def item(self, split: str, index: int) -> dict:
        _check_split(split)
        if index < 0:
            raise IndexError(f"negative item index {index}")
        found = self._walk_items[split]
        while len(found) <= index:
            self._advance(split, index + 1)
        item = found[index]
        # Callers may edit what they get; the cache must not change under them.
        return {**item, "metadata": copy.deepcopy(item["metadata"])}

    def _eval_attempts(self, wanted: int) -> int:
        if self.heldout_fraction <= 0.0:
            return 0
        return math.ceil(self.EVAL_ATTEMPTS_PER_ITEM * wanted / self.heldout_fraction)

    def _advance(self, split: str, wanted: int) -> None:
        """Walk the generator until `wanted` items of `split` exist (or give up)."""
        found = self._walk_items[split]
        seed = self.split_seed(split)
        gap = 0
        while len(found) < wanted:
            cursor = self._walk_cursor[split]
            if split == "eval" and cursor >= self._eval_attempts(wanted):
                raise IndexError(
                    f"task {self.name!r}: only {len(found)} distinct eval questions found in {cursor} "
                    f"generated items (asked for {wanted}); the question space is too small"
                )
            if split == "train" and gap >= self.MAX_TRAIN_GAP:
                raise WorkbenchError(
                    f"task {self.name!r}: no training question in {gap} generated items; "
                    f"heldout_fraction={self.heldout_fraction} leaves nothing to train on"
                )
            entry = self._generate(seed, cursor)
            self._walk_cursor[split] = cursor + 1
            question = entry["question"]
            heldout = self.is_heldout(question)
            if split == "train":
                if heldout:
                    gap += 1
                    continue
            else:
                if not heldout or question in self._eval_seen:
                    continue
                self._eval_seen.add(question)
            gap = 0
            found.append(
                {
                    "id": f"{self.name}/{split}/{len(found)}",
                    "question": question,
                    "answer": str(entry["answer"]),
                    "metadata": json_safe(entry.get("metadata") or {}),
                }
            )

    def __getstate__(self) -> dict:
        # Reward functions (which hold the task) get pickled into rollout workers; the walk caches
        # are large and rebuilt deterministically, so they stay behind.
        state = self.__dict__.copy()
        for key in ("_walk_items", "_walk_cursor", "_eval_seen"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_walks()
