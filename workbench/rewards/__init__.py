"""Reward functions for GRPO and their registry.

    from workbench.rewards import build_rewards
    funcs, weights = build_rewards({"accuracy": 1.0, "format": 0.5}, task, max_completion_length=256)
    GRPOTrainer(..., reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...))

Every function follows TRL's contract `fn(completions, **columns) -> list[float | None]`; the
dataset columns they read are `answer`, `metadata` (JSON string) and `question`, plus TRL's own
`completion_ids`. `build_rewards` wraps each in `SafeReward`, so a reward that raises costs one
sample's reward (None), never the run.

| name       | range        | what                                                           |
|------------|--------------|----------------------------------------------------------------|
| accuracy   | {0, 1}       | the task's checker on the extracted final answer (correct or not) |
| partial_credit | [0, 1]   | the task's own graded credit (reasoning-gym's); off by default |
| format     | {0, 1}       | strict `<think>...</think><answer>...</answer>`                |
| tags       | {0, .25, ..1}| 0.25 per R1 tag that appears exactly once                      |
| repetition | [-1, 0]      | minus the share of repeated token 3-grams (TRL)                |
| overlong   | [-1, 0]      | DAPO soft punishment of the last fifth of the length (TRL)     |
| length     | [-1, 1]      | cosine length scaling of math-verify correctness (TRL)         |
| code       | [0, 1]       | share of the item's unit tests the code block passes (sandbox) |
| language   | [0, 1]       | R1's language consistency: share of English-script words in the CoT |
"""

from __future__ import annotations

from collections.abc import Callable

from workbench.rewards.code import CodeExecutionReward
from workbench.rewards.language import LanguageConsistencyReward, language_consistency
from workbench.rewards.extract import completion_text, extract_answer, extract_code, last_number
from workbench.rewards.rules import AccuracyReward, FormatReward, PartialCreditReward, TagCountReward
from workbench.rewards.safe import SafeReward
from workbench.rewards.shaping import LengthReward, OverlongReward, RepetitionReward
from workbench.errors import WorkbenchError

__all__ = [
    "REWARDS",
    "AccuracyReward",
    "CodeExecutionReward",
    "LanguageConsistencyReward",
    "FormatReward",
    "LengthReward",
    "PartialCreditReward",
    "OverlongReward",
    "RepetitionReward",
    "SafeReward",
    "TagCountReward",
    "UnknownRewardError",
    "build_rewards",
    "completion_text",
    "extract_answer",
    "extract_code",
    "language_consistency",
    "last_number",
]


class UnknownRewardError(WorkbenchError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"unknown reward {name!r}; valid choices: {', '.join(REWARDS)}")


# Factories share one signature so the registry can build any of them from a config.
def _accuracy(task, max_completion_length: int):
    return AccuracyReward(task)


def _partial_credit(task, max_completion_length: int):
    return PartialCreditReward(task)


def _format(task, max_completion_length: int):
    return FormatReward()


def _tags(task, max_completion_length: int):
    return TagCountReward()


def _repetition(task, max_completion_length: int):
    return RepetitionReward(ngram_size=3, max_penalty=-1.0)


def _overlong(task, max_completion_length: int):
    return OverlongReward(max_completion_length)


def _length(task, max_completion_length: int):
    return LengthReward(task, max_completion_length)


def _code(task, max_completion_length: int):
    return CodeExecutionReward(task)


def _language(task, max_completion_length: int):
    # English: the embedded model's and every registered task's language (workbench.rewards.language
    # takes any code in its LANGUAGES table; register another name for another target).
    return LanguageConsistencyReward("en")


REWARDS: dict[str, Callable] = {
    "accuracy": _accuracy,
    "partial_credit": _partial_credit,
    "format": _format,
    "tags": _tags,
    "repetition": _repetition,
    "overlong": _overlong,
    "length": _length,
    "code": _code,
    "language": _language,
}


def build_rewards(
    weights: dict[str, float], task, max_completion_length: int, on_error: Callable | None = None
) -> tuple[list[Callable], list[float]]:
    """Reward functions (each wrapped in SafeReward) and their weights, in the order of `weights`."""
    unknown = [name for name in weights if name not in REWARDS]
    if unknown:
        raise UnknownRewardError(unknown[0])
    funcs, values = [], []
    for name, weight in weights.items():
        funcs.append(SafeReward(REWARDS[name](task, max_completion_length), on_error=on_error))
        values.append(float(weight))
    return funcs, values
