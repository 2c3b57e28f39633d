"""Reward functions for GRPO and their registry.

    from workbench.rewards import build_rewards
    funcs, weights = build_rewards({"accuracy": 1.0, "format": 0.5}, task, max_completion_length=256)
    GRPOTrainer(..., reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...))

Every function follows TRL's contract `fn(completions, **columns) -> list[float | None]`; the
dataset columns they read are `answer`, `metadata` (JSON string), `question` and `prompt_id`, plus
TRL's own `prompts`, `completion_ids` and `trainer_state`. `build_rewards` wraps each in
`SafeReward`, so a reward that raises, or returns NaN or an infinity, costs one sample's reward
(None, counted in `reward_errors/<name>`), never the run.

Your own reward: name it by import path, `package.module:name`, with its weight, in a recipe
(`rewards: {accuracy: 1.0, "my_rewards:brevity": 0.2}`) or on the CLI (`--rewards
accuracy=1,my_rewards:brevity=0.2`), as open-r1 users write theirs. `name` is a function, or a
class instantiated without arguments; it is checked when the config is (importable, callable,
accepts `completions` and `**kwargs`, every other parameter a dataset column) and wrapped in the
same `SafeReward` as the built-in ones. Its metrics are `rewards/<package.module:name>/...`.

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
    "check_reward_names",
    "load_custom_reward",
    "completion_text",
    "extract_answer",
    "extract_code",
    "language_consistency",
    "last_number",
]


class UnknownRewardError(WorkbenchError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"unknown reward {name!r}; valid choices: {', '.join(REWARDS)}, or your own as "
                         "package.module:name")


# What TRL passes every reward besides the dataset's columns (GRPOTrainer._calculate_rewards).
TRL_ARGUMENTS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric")
DATASET_COLUMNS = ("prompt", "prompt_id", "question", "answer", "metadata")


def load_custom_reward(path: str):
    """The reward function at import path ``path`` ("package.module:name"): the function, or an
    instance of the class made without arguments. Raises WorkbenchError (one line naming the
    problem) when it cannot be imported, is not callable, or does not follow TRL's contract."""
    import importlib
    import inspect

    module_name, _, attr = str(path).partition(":")
    if not module_name or not attr or not all(p.isidentifier() for p in module_name.split(".") + attr.split(".")):
        raise WorkbenchError(f"reward {path!r}: a custom reward is named 'package.module:name'; valid built-in "
                             f"choices: {', '.join(REWARDS)}")
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:
        raise WorkbenchError(f"reward {path!r}: cannot import {module_name!r} ({type(e).__name__}: {e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise WorkbenchError(f"reward {path!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as e:
            raise WorkbenchError(f"reward {path!r}: the class cannot be made without arguments "
                                 f"({type(e).__name__}: {e})") from None
    if not callable(obj):
        raise WorkbenchError(f"reward {path!r} is a {type(obj).__name__}, not a function or class")
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return obj  # a builtin or C callable: nothing to check
    names = {p.name for p in params}
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        raise WorkbenchError(f"reward {path!r} must accept **kwargs: TRL passes it {', '.join(TRL_ARGUMENTS)} "
                             "and the dataset's columns by name")
    if "completions" not in names:
        raise WorkbenchError(f"reward {path!r} must take a 'completions' argument (TRL's contract: "
                             "fn(completions, **kwargs) -> list[float | None])")
    unknown = sorted(p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                     and p.default is p.empty and p.name not in TRL_ARGUMENTS + DATASET_COLUMNS)
    if unknown:
        raise WorkbenchError(f"reward {path!r} needs {', '.join(map(repr, unknown))}, which the dataset does not "
                             f"have; its columns: {', '.join(DATASET_COLUMNS)}")
    return obj


def check_reward_names(names) -> None:
    """Raise UnknownRewardError or WorkbenchError for a name that is neither built in nor a loadable
    custom reward (``load_custom_reward``)."""
    for name in names:
        if name in REWARDS:
            continue
        if ":" not in str(name):
            raise UnknownRewardError(name)
        load_custom_reward(name)


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
    weights: dict[str, float], task, max_completion_length: int, on_error: Callable | None = None,
    timeout_s: float | None = None,
) -> tuple[list[Callable], list[float]]:
    """Reward functions (each wrapped in SafeReward) and their weights, in the order of `weights`;
    a name "package.module:name" is a custom reward (``load_custom_reward``). ``timeout_s``: each
    call's time limit in seconds (``SafeReward``); None for none."""
    check_reward_names(weights)
    funcs, values = [], []
    for name, weight in weights.items():
        fn = REWARDS[name](task, max_completion_length) if name in REWARDS else load_custom_reward(name)
        funcs.append(SafeReward(fn, on_error=on_error, name=name, timeout_s=timeout_s))
        values.append(float(weight))
    return funcs, values
