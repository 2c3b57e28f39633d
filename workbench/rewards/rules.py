"""Rule-based rewards of R1-Zero: accuracy (the task's verifier) and the <think>/<answer> format.

Each reward is a callable class with a `__name__` (TRL names its metrics `rewards/<__name__>`) so
that it pickles, and follows TRL's contract `fn(completions, **columns) -> list[float | None]`.

    reward = AccuracyReward(get_task("chain_sum"))
    reward(["<think>2+2</think><answer>4</answer>"], answer=["4"], metadata=["{}"])  # [1.0]
"""

from __future__ import annotations

import json

from workbench.rewards.extract import STRICT_FORMAT, TAGS, completion_text, extract_answer



def per_sample(column, n: int, name: str) -> list:
    """A dataset column TRL passed to a reward, as a list of one value per completion (``n`` of them).

    Raises ValueError when the column is missing or its length is not ``n``."""
    if column is None:
        raise ValueError(f"the dataset has no {name!r} column")
    if len(column) != n:
        raise ValueError(f"column {name!r} has {len(column)} values for {n} completions")
    return list(column)


class AccuracyReward:
    """1.0 for a correct final answer, by the task's own verifier; partial credit if it gives any.

    Reads the dataset columns `answer` (gold), `metadata` (the item's metadata as a JSON string)
    and, if present, `question`, rebuilds the item and scores the extracted answer with
    `task.score`. Logs the extracted answers as a column of TRL's completions table.
    """

    __name__ = "accuracy"

    def __init__(self, task):
        self.task = task

    def __call__(self, completions, answer=None, metadata=None, question=None, log_extra=None, **kwargs):
        n = len(completions)
        answers = per_sample(answer, n, "answer")
        metadatas = [None] * n if metadata is None else per_sample(metadata, n, "metadata")
        questions = [""] * n if question is None else per_sample(question, n, "question")
        extracted = [extract_answer(completion_text(c), self.task.answer_kind) for c in completions]
        rewards = []
        for pred, gold, meta, q in zip(extracted, answers, metadatas, questions):
            if isinstance(meta, str):
                meta = json.loads(meta) if meta else {}
            item = {"question": q, "answer": gold, "metadata": meta or {}}
            rewards.append(self.task.score(pred, item))
        if log_extra is not None:
            log_extra("extracted_answer", extracted)
        return rewards


class FormatReward:
    """Strict R1 format: 1.0 iff the completion is `<think>...</think> <answer>...</answer>`.

    Only whitespace may surround the two blocks, and each tag must appear exactly once (a lazy
    regex alone would accept a second <think> inside the first block).
    """

    __name__ = "format"

    def __call__(self, completions, **kwargs):
        rewards = []
        for c in completions:
            text = completion_text(c)
            once = all(text.count(tag) == 1 for tag in TAGS)
            rewards.append(1.0 if once and STRICT_FORMAT.match(text) else 0.0)
        return rewards


class TagCountReward:
    """Soft format credit: 0.25 for each of the four tags that appears exactly once.

    Like open-r1's tag_count_reward: a small model rarely hits the strict format by chance, and
    this gives GRPO a gradient towards it. Order is not checked; FormatReward does that.
    """

    __name__ = "tags"

    def __call__(self, completions, **kwargs):
        return [sum(0.25 for tag in TAGS if completion_text(c).count(tag) == 1) for c in completions]
