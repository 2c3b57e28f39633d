"""Rule-based rewards of R1-Zero: accuracy (the task's checker) and the <think>/<answer> format.

Accuracy is 1.0 for a correct answer and 0.0 otherwise, exactly what evaluation counts; a task's
graded credit (reasoning-gym's substring credit, countdown's 0.05 for the right numbers) is the
separate ``partial_credit`` reward, off by default. The format rewards see the prompt: when the
prompt ends by opening ``<think>`` (R1-Distill chat templates do), the completion starts inside
the think block and is judged as if it began with the tag (``prompt_opens_think``).

Each reward is a callable class with a `__name__` (TRL names its metrics `rewards/<__name__>`) so
that it pickles, and follows TRL's contract `fn(completions, **columns) -> list[float | None]`.

    reward = AccuracyReward(get_task("chain_sum"))
    reward(["<think>2+2</think><answer>4</answer>"], answer=["4"], metadata=["{}"])  # [1.0]
"""

from __future__ import annotations

import json

from workbench.rewards.extract import TAGS, completion_text, extract_answer, r1_format_ok, with_prompt_tag



def per_sample(column, n: int, name: str) -> list:
    """A dataset column TRL passed to a reward, as a list of one value per completion (``n`` of them).

    Raises ValueError when the column is missing or its length is not ``n``."""
    if column is None:
        raise ValueError(f"the dataset has no {name!r} column")
    if len(column) != n:
        raise ValueError(f"column {name!r} has {len(column)} values for {n} completions")
    return list(column)


def _prompts(prompts, n: int) -> list:
    return list(prompts) if prompts is not None and len(prompts) == n else [None] * n


class AccuracyReward:
    """1.0 for a correct final answer by the task's checker (``task.score``), else 0.0.

    Reads the dataset columns `answer` (gold), `metadata` (the item's metadata as a JSON string)
    and, if present, `question`, rebuilds the item and scores the answer `extract_answer` finds.
    Logs the extracted answers as a column of TRL's completions table.
    """

    __name__ = "accuracy"

    def __init__(self, task):
        self.task = task

    def _score(self, pred, item) -> float:
        return self.task.score(pred, item)

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
            rewards.append(self._score(pred, item))
        if log_extra is not None and self.__name__ == "accuracy":
            log_extra("extracted_answer", extracted)
        return rewards


class PartialCreditReward(AccuracyReward):
    """The task's own graded score of the extracted answer (``task.credit``), in [0, 1]: reasoning-gym's
    substring credit, countdown's 0.05 for an expression with the right numbers, a code task's share
    of tests. Off by default: it is a shaping reward, not accuracy."""

    __name__ = "partial_credit"

    def _score(self, pred, item) -> float:
        return self.task.credit(pred, item)


class FormatReward:
    """Strict R1 format: 1.0 iff the completion is `<think>...</think> <answer>...</answer>`.

    Only whitespace may surround the two blocks, each tag must appear exactly once (a lazy regex
    alone would accept a second <think> inside the first block), and neither block may be empty
    (``extract.r1_format_ok``). A ``<think>`` that the prompt opened (TRL's ``prompts`` column)
    counts as the completion's own.
    """

    __name__ = "format"

    def __call__(self, completions, prompts=None, **kwargs):
        rewards = []
        return [1.0 if r1_format_ok(with_prompt_tag(c, p)) else 0.0
                for c, p in zip(completions, _prompts(prompts, len(completions)))]


class TagCountReward:
    """Soft format credit: 0.25 for each of the four tags that appears exactly once.

    Like open-r1's tag_count_reward: a small model rarely hits the strict format by chance, and
    this gives GRPO a gradient towards it. Order is not checked; FormatReward does that.
    """

    __name__ = "tags"

    def __call__(self, completions, prompts=None, **kwargs):
        texts = [with_prompt_tag(c, p) for c, p in zip(completions, _prompts(prompts, len(completions)))]
        return [sum(0.25 for tag in TAGS if t.count(tag) == 1) for t in texts]
