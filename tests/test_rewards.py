"""Tests for workbench.rewards on literal completions: answer extraction, each reward, the
registry, and SafeReward's failure handling."""

import json
import pickle
import re

import pytest

from workbench.rewards import (
    REWARDS,
    AccuracyReward,
    FormatReward,
    PartialCreditReward,
    SafeReward,
    TagCountReward,
    UnknownRewardError,
    build_rewards,
    extract_answer,
)
from workbench.config import WorkbenchConfig
from workbench.errors import WorkbenchError
from workbench.tasks import get_task


@pytest.fixture(scope="module")
def chain_sum():
    return get_task("chain_sum")


def _columns(task, item, n):
    return {
        "answer": [item["answer"]] * n,
        "metadata": [json.dumps(item["metadata"])] * n,
        "question": [item["question"]] * n,
    }


# --- extraction -------------------------------------------------------------------------------


def test_extract_prefers_last_answer_tag():
    assert extract_answer("<answer>1</answer> then <answer> 12 </answer> 99") == "12"
    assert extract_answer("<think>x</think><answer></answer> 5") is None  # an empty tag is no answer, not the 5


def test_extract_number_fallback():
    assert extract_answer("3 + 4 is 7") == "7"
    assert extract_answer("so the result is -4.") == "-4"
    assert extract_answer("7-3 leaves 4, then 10-6") == "6"  # a minus after a digit is an operator
    assert extract_answer("total: 1,234 apples") == "1234"
    assert extract_answer("pi is about 3.14") == "3.14"
    assert extract_answer("no digits here") is None


def test_extract_expression_and_text_fallback():
    assert extract_answer("I tried things.\nAnswer: (3 + 4) * 5", "expression") == "(3 + 4) * 5"
    assert extract_answer("So the final answer is **3*4+1**.", "expression") == "3*4+1"
    assert extract_answer("thus \\boxed{x+1}", "expression") == "x+1"
    assert extract_answer("Answer: 1\nwait, no.\nFinal answer: 2", "text") == "2"
    assert extract_answer("it is probably 3 + 4", "expression") is None  # no marker: no guess


# --- accuracy ---------------------------------------------------------------------------------


def test_accuracy_with_tag_fallback_and_wrong_answers(chain_sum):
    item = next(i for i in chain_sum.items("train", 50) if i["answer"].startswith("-"))
    gold = item["answer"]
    wrong = str(int(gold) - 1)
    completions = [
        f"<think>compute</think><answer>{gold}</answer>",
        f"The answer is {gold}",  # last-number fallback, negative number
        f"<think>{gold}</think><answer>{wrong}</answer>",  # the tag wins over the reasoning
        f"I think {gold}, no wait, {wrong}",
        "",
    ]
    reward = AccuracyReward(chain_sum)
    logged = {}
    out = reward(completions, log_extra=lambda col, vals: logged.setdefault(col, vals), **_columns(chain_sum, item, 5))
    assert out == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert reward.__name__ == "accuracy"
    assert logged["extracted_answer"] == [gold, gold, wrong, wrong, None]


def test_accuracy_uses_task_verifier_with_metadata():
    # countdown's verifier checks the numbers used and the value against metadata, not the text.
    task = get_task("countdown")
    item = task.item("train", 0)
    reworded = f"<answer>({item['answer']})</answer>"  # not the gold string, still correct
    cols = _columns(task, item, 2)
    assert AccuracyReward(task)([reworded, "<answer>nonsense</answer>"], **cols) == [1.0, 0.0]
    moved = {**item["metadata"], "target": item["metadata"]["target"] + 1}
    cols["metadata"] = [json.dumps(moved)] * 2
    # Right numbers, wrong value: not correct, so accuracy is 0; countdown's shaping credit (0.05)
    # is the partial_credit reward's (only <= 0.01 is cut).
    assert AccuracyReward(task)([reworded, reworded], **cols) == [0.0, 0.0]
    assert all(0.0 < r < 1.0 for r in PartialCreditReward(task)([reworded, reworded], **cols))


# --- format and tags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "<think>a</think><answer>4</answer>",
        "  <think>\nlong\nreasoning\n</think>\n\n<answer> 4 </answer>\n",
    ],
)
def test_format_accepts_strict_r1(text):
    assert FormatReward()([text]) == [1.0]


@pytest.mark.parametrize(
    "text",
    [
        "a</think><answer>4</answer>",  # missing <think>
        "<think>a</think>",  # missing answer
        "<think>a</think><answer>4</answer> and more",  # text after </answer>
        "intro <think>a</think><answer>4</answer>",  # text before <think>
        "<think>a<think>b</think><answer>4</answer>",  # duplicate tag
        "<think>a</think><answer>4</answer><answer>5</answer>",  # duplicate block
        "<answer>4</answer><think>a</think>",  # wrong order
        " <think> </think> <answer> </answer>",  # the empty template a base model learned to game it with
        "<think>a</think><answer>\n</answer>",  # no answer
        "<think></think><answer>4</answer>",  # no reasoning
    ],
)
def test_format_rejects(text):
    assert FormatReward()([text]) == [0.0]


def test_tag_count_partial_credit():
    out = TagCountReward()(
        [
            "<think>a</think><answer>4</answer>",
            "<think>a</think> 4",
            "<think>a<think></think>",
            "nothing",
            "<answer>4</answer> <think>",
        ]
    )
    assert out == [1.0, 0.5, 0.25, 0.0, 0.75]


# --- rewards reused from TRL ------------------------------------------------------------------


def _build(name, task, max_len=100):
    (fn,), (weight,) = build_rewards({name: 2.0}, task, max_len)
    assert fn.__name__ == name and weight == 2.0
    return fn


def test_repetition_penalty_on_ids(chain_sum):
    fn = _build("repetition", chain_sum)
    out = fn(["a", "b", "c"], completion_ids=[[1, 2, 3, 4, 5], [7] * 10, [1, 2]])
    assert out[0] == 0.0  # no repeated 3-gram
    assert out[1] == pytest.approx(-(1 - 1 / 8))  # 8 identical 3-grams
    assert out[2] == 0.0  # shorter than a 3-gram


def test_overlong_punishment_on_ids(chain_sum):
    fn = _build("overlong", chain_sum, max_len=100)  # punishes the last 20 tokens
    out = fn(["a"] * 4, completion_ids=[[0] * 50, [0] * 80, [0] * 90, [0] * 100])
    assert out == [0.0, 0.0, pytest.approx(-0.5), pytest.approx(-1.0)]


def test_length_reward_scales_by_correctness_and_length(chain_sum):
    item = chain_sum.item("train", 0)
    gold, wrong = item["answer"], str(int(item["answer"]) + 1)
    fn = _build("length", chain_sum, max_len=100)
    completions = [f"<answer>{gold}</answer>", f"<answer>{gold}</answer>", f"<answer>{wrong}</answer>", f"so {gold}"]
    ids = [[0] * 10, [0] * 90, [0] * 10, [0] * 10]
    out = fn(completions, completion_ids=ids, **_columns(chain_sum, item, 4))
    assert out[0] > out[1] > 0.5  # correct: shorter is better
    assert out[2] < -0.5  # wrong and short: punished most
    assert out[3] == pytest.approx(out[0])  # last-number fallback counts as the answer


def test_rewards_pickle(chain_sum):
    # Every reward but "code", which needs a code task (tests/test_code_reward.py pickles that one).
    funcs, _ = build_rewards({name: 1.0 for name in REWARDS if name != "code"}, chain_sum, 64)
    for fn in funcs:
        again = pickle.loads(pickle.dumps(fn))
        assert again.__name__ == fn.__name__
    item = chain_sum.item("train", 0)
    acc = pickle.loads(pickle.dumps(funcs[0]))
    assert acc([f"<answer>{item['answer']}</answer>"], **_columns(chain_sum, item, 1)) == [1.0]


def test_unknown_reward_lists_choices(chain_sum):
    with pytest.raises(UnknownRewardError) as e:
        build_rewards({"accuracy": 1.0, "acuracy": 1.0}, chain_sum, 64)
    assert "acuracy" in str(e.value)
    for name in REWARDS:
        assert name in str(e.value)
    assert isinstance(e.value, ValueError)


# --- SafeReward -------------------------------------------------------------------------------


class _FailsOn:
    __name__ = "fragile"

    def __init__(self, bad: str):
        self.bad = bad

    def __call__(self, completions, **kwargs):
        kwargs["log_extra"]("seen", list(completions))
        kwargs["log_metric"]("calls", 1.0)
        if self.bad in completions:
            raise RuntimeError("verifier crashed")
        return [float(len(c)) for c in completions]


def test_safe_reward_isolates_a_failing_sample():
    errors, metrics, extra = [], [], []
    safe = SafeReward(_FailsOn("boom"), on_error=lambda name, i, exc: errors.append((name, i, str(exc))))
    out = safe(
        ["ab", "boom", "abcd"],
        answer=["1", "2", "3"],
        log_metric=lambda name, value: metrics.append((name, value)),
        log_extra=lambda col, vals: extra.append((col, vals)),
    )
    assert out == [2.0, None, 4.0]
    assert safe.__name__ == "fragile"
    assert errors == [("fragile", 1, "verifier crashed")]
    assert ("reward_errors/fragile", 1) in metrics
    # The failed batch attempt left nothing behind; the column stays aligned with the batch.
    assert extra == [("seen", ["ab", None, "abcd"])]
    assert safe.n_errors == 1


def test_safe_reward_reports_zero_errors_on_a_clean_batch():
    metrics = []
    safe = SafeReward(_FailsOn("boom"))
    assert safe(["a", "bb"], log_metric=lambda n, v: metrics.append((n, v))) == [1.0, 2.0]
    assert ("reward_errors/fragile", 0) in metrics


def test_safe_reward_all_failing_returns_none():
    def always(completions, **kwargs):
        raise ValueError("nope")

    errors = []
    safe = SafeReward(always, on_error=lambda *a: errors.append(a))
    assert safe(["a", "b", "c"]) == [None, None, None]
    assert safe.__name__ == "always"
    assert [i for _, i, _ in errors] == [0, 1, 2]


def test_safe_reward_wrong_length_and_bad_values():
    def short(completions, **kwargs):
        return [1.0] * (len(completions) - 1) if len(completions) > 1 else ["x"]

    safe = SafeReward(short, on_error=lambda *a: (_ for _ in ()).throw(RuntimeError("on_error itself fails")))
    assert safe(["a", "b"]) == [None, None]  # batch is short; alone each returns a non-number


def test_build_rewards_wraps_in_safe_reward(chain_sum):
    errors = []
    weights = {"accuracy": 1.0, "format": 0.5}
    funcs, weights = build_rewards(weights, chain_sum, 64, on_error=lambda *a: errors.append(a))
    assert [f.__name__ for f in funcs] == ["accuracy", "format"] and weights == [1.0, 0.5]
    assert all(isinstance(f, SafeReward) for f in funcs)
    # No `answer` column: accuracy cannot score, so it returns None instead of raising.
    assert funcs[0](["<answer>1</answer>"]) == [None]
    assert errors and errors[0][0] == "accuracy"


# --- your own reward by import path ---------------------------------------------------------------

USER_REWARDS = '''
def brevity(completions, **kwargs):
    return [1.0 / (1 + len(c)) for c in completions]


def open_r1_style(prompts, completions, answer, **kwargs):
    return [float(a in c) for c, a in zip(completions, answer)]


class Weighted:
    __name__ = "weighted"

    def __call__(self, completions, **kwargs):
        return [0.5 for _ in completions]


def wants_solution(completions, solution, **kwargs):
    return [0.0 for _ in completions]


def no_kwargs(completions):
    return [0.0 for _ in completions]


def explodes(completions, **kwargs):
    raise RuntimeError("boom")


NOT_CALLABLE = 3
'''


@pytest.fixture
def user_rewards(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(USER_REWARDS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_rewards"


def test_custom_rewards_by_import_path_run_as_trl_calls_them(user_rewards):
    weights = {"accuracy": 1.0, "my_rewards:brevity": 0.2, "my_rewards:open_r1_style": 1.0,
               "my_rewards:Weighted": 1.0, "my_rewards:explodes": 1.0}
    WorkbenchConfig(rewards=weights)  # checked when the config is
    errors = []
    funcs, values = build_rewards(weights, get_task("chain_sum"), 64, on_error=lambda *a: errors.append(a))
    assert [f.__name__ for f in funcs] == list(weights) and values == [1.0, 0.2, 1.0, 1.0, 1.0]
    columns = {"prompts": ["Q", "Q"], "answer": ["4", "4"], "metadata": ["{}", "{}"], "question": ["q", "q"]}
    completions = ["<answer>4</answer>", "<answer>5</answer>"]
    out = [f(completions=completions, **columns) for f in funcs]  # keyword, as TRL calls rewards
    assert out[0] == [1.0, 0.0] and out[1] == [1 / 19, 1 / 19] and out[2] == [1.0, 0.0] and out[3] == [0.5, 0.5]
    assert out[4] == [None, None] and [e[0] for e in errors] == ["my_rewards:explodes"] * 2


@pytest.mark.parametrize("name,message", [
    ("my_rewards:missing", "has no 'missing'"),
    ("no_such_module:f", "cannot import 'no_such_module'"),
    ("my_rewards:NOT_CALLABLE", "not a function or class"),
    ("my_rewards:wants_solution", "needs 'solution', which the dataset does not have"),
    ("my_rewards:no_kwargs", "must accept **kwargs"),
    ("my_rewards:", "package.module:name"),
])
def test_a_bad_custom_reward_is_one_clear_line_at_start(user_rewards, name, message):
    with pytest.raises(WorkbenchError, match=re.escape(message)) as e:
        WorkbenchConfig(rewards={"accuracy": 1.0, name: 1.0})
    assert "\n" not in str(e.value)


def test_a_hanging_reward_call_times_out_as_no_reward():
    import threading

    release, errors, metrics = threading.Event(), [], {}

    def hangs(completions, **kwargs):
        release.wait(30)  # hangs until the test lets it go
        return [1.0 for _ in completions]

    safe = SafeReward(hangs, on_error=lambda name, i, exc: errors.append((i, type(exc).__name__)), timeout_s=0.2)
    out = safe(["a", "b"], log_metric=lambda n, v: metrics.__setitem__(n, v))
    release.set()
    assert out == [None, None] and errors == [(0, "RewardTimeout"), (1, "RewardTimeout")]
    assert metrics["reward_errors/hangs"] == 2
    fast = SafeReward(lambda completions, **kw: [0.5 for _ in completions], timeout_s=5)
    assert fast(["a"]) == [0.5]  # within the limit: the call's own result
    with pytest.raises(WorkbenchError, match="reward_timeout_s must be > 0"):
        WorkbenchConfig(reward_timeout_s=0)
