"""Answers that real completions give, scored through the rewards as TRL calls them.

Each block is one kind of fault the rewards issue listed (tagged answers read raw, partial credit
counted as accuracy, Unicode minus signs, nested \\boxed, guessed gold kinds, a <think> opened by
the prompt, non-finite rewards, cons@k by string), with many forms of it, not only the example.
"""

import json

import pytest

from workbench.analysis.estimators import majority_vote
from workbench.rewards import SafeReward, build_rewards, extract_answer
from workbench.rewards.answers import answers_equal, kind_of, parse_number
from workbench.tasks import JsonlTask, get_task, list_tasks


def _reward(task, name="accuracy"):
    """The reward `name` exactly as training builds it (wrapped in SafeReward)."""
    (fn,), _ = build_rewards({name: 1.0}, task, max_completion_length=64)
    return fn


def _score(task, gold, completion, metadata=None, prompt="Q"):
    """What the accuracy reward gives `completion` for a question whose gold answer is `gold`."""
    return _reward(task)([completion], prompts=[prompt], answer=[gold], question=["q"],
                         metadata=[json.dumps(metadata or {})])[0]


def _jsonl(tmp_path, *golds):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", "answer": g}) + "\n" for i, g in enumerate(golds)))
    return JsonlTask(path)


# --- 1. tagged answers go through the same normalisation as untagged ones -------------------------

WRAPPINGS = [
    "<think>so</think> <answer>{a}</answer>",
    "<think>so</think> <answer>\\boxed{{{a}}}</answer>",
    "<think>so</think> <answer>${a}$</answer>",
    "<think>so</think> <answer>**{a}**</answer>",
    "<think>so</think> <answer>{a}.</answer>",
    "<think>so</think> <answer>The answer is {a}.</answer>",
    "so the result is \\boxed{{{a}}}",
    "The answer is {a}.",
    "**Final Answer**\n{a}",
    "**Final Answer:** {a}",
    "Final Answer\n\\boxed{{{a}}}",
    "work... $\\boxed{{{a}}}$",
]


@pytest.mark.parametrize("wrapping", WRAPPINGS)
@pytest.mark.parametrize("task_name,gold", [("chain_sum", "13"), ("chain_sum", "-4"), ("gsm_symbolic", "1250"),
                                            ("basic_arithmetic", "-17")])
def test_a_gold_number_scores_one_in_every_wrapping(task_name, gold, wrapping):
    task = get_task(task_name)
    shown = f"{int(gold):,}"  # thousands separators where they form real groups
    assert _score(task, gold, wrapping.format(a=shown)) == 1.0
    assert _score(task, gold, wrapping.format(a=int(gold) + 1)) == 0.0


@pytest.mark.parametrize("text,value", [("1,250", 1250), ("12,345,678", 12345678), ("1,250.5", 1250.5),
                                        ("$1,250", 1250), ("1250 dollars", 1250), ("50%", 50), ("3/4", 0.75),
                                        ("\\frac{3}{4}", 0.75), ("-\\frac{1}{2}", -0.5), ("\\dfrac{1}{2}", 0.5),
                                        (".5", 0.5), ("-.5", -0.5), ("-$5", -5), ("25 cm\u00b2", 25), ("25 m^2", 25),
                                        ("10kg", 10), ("5 km/h", 5), ("50 percent", 50)])
def test_numbers_are_read_with_their_groups_units_and_fractions(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0,1", "1,25", "12,34,567", "-3, 4", "x+1", "2 and 4", "7-3", "", "5x", "2pi", "2 pi",
                                  "44 and 45", "1,2345"])
def test_things_that_are_not_one_number_are_not_read_as_one(text):
    assert parse_number(text) is None


@pytest.mark.parametrize("completion,gold", [
    ("<answer>x = 3/4</answer>", "0.75"), ("The probability is $\\frac{3}{4}$.", "3/4"),
    ("<answer>The answer is \\frac{1}{2}</answer>", "0.5"), ("<think>\\boxed{5}</think> The answer is 7", "7"),
    ("<think>so 5</think>", "5"), ("Answer" + " " * 300 + "12", "12"),
])
def test_number_extraction_reads_the_answer_not_a_piece_of_it(completion, gold):
    value = extract_answer(completion, "number")
    assert parse_number(value) == parse_number(gold), value


def test_long_adversarial_completions_are_read_in_linear_time():
    # A guard against catastrophic backtracking (seconds to hours on these inputs when it regresses),
    # not a speed target: each is a few milliseconds.
    import time

    for text in ["Answer" + "\n" * 5000, "Answer" + " " * 100_000 + "x", "\\boxed{" * 5000, "a" * 100_000 + "1",
                 "the answer is" + " " * 50_000 + "x" + " " * 50_000, "1," * 50_000]:
        start = time.monotonic()
        for kind in ("number", "text"):
            extract_answer(text, kind)
        parse_number(text)
        assert time.monotonic() - start < 5, text[:20]


def test_a_dataset_tolerance_is_kept_but_not_its_sign_slip():
    task = get_task("decimal_arithmetic")
    item = task.item("train", 0)
    gold = parse_number(item["answer"])
    close = float(gold) + (0.4 if gold > 0 else -0.4) * 10 ** -task.config.get("max_num_decimal_places", 6)
    assert task.score(repr(close), item) == 1.0  # within the dataset's own rounding tolerance
    assert task.score(str(-gold), item) == 0.0
    assert task.checker.startswith("numeric equality")


# --- 2. accuracy means correct: a task's partial credit is not accuracy ----------------------------

@pytest.mark.parametrize("task_name,gold,answer", [
    ("chain_sum", "2", "-2"), ("chain_sum", "2", "12"), ("chain_sum", "-2", "2"), ("chain_sum", "5", "5.5"),
    ("gsm_symbolic", "44", "-44"), ("gsm_symbolic", "44", "44 and 45"), ("gsm_symbolic", "1250", "125"),
])
def test_partial_credit_is_not_accuracy(task_name, gold, answer):
    task = get_task(task_name)
    assert _score(task, gold, f"<think>.</think> <answer>{answer}</answer>") == 0.0


def test_partial_credit_is_its_own_reward():
    task = get_task("chain_sum")
    partial = _reward(task, "partial_credit")
    value = partial(["<answer>-2</answer>"], answer=["2"], question=["q"], metadata=["{}"])[0]
    assert 0.0 < value < 1.0  # reasoning-gym's substring credit, under its own name


def test_countdown_counts_an_expression_only_when_it_is_right():
    task = get_task("countdown")
    item = task.item("train", 0)
    meta = item["metadata"]
    assert _score(task, item["answer"], f"<answer>\\boxed{{{item['answer']}}}</answer>", meta) == 1.0
    wrong_target = {**meta, "target": meta["target"] + 1}
    assert _score(task, item["answer"], f"<answer>{item['answer']}</answer>", wrong_target) == 0.0


# --- 3. Unicode forms ------------------------------------------------------------------------------

@pytest.mark.parametrize("minus", ["\u2212", "\u2013", "\u2014", "\u2012", "\ufe63", "\uff0d"])
def test_unicode_minus_signs_and_dashes_are_minus(minus):
    task = get_task("chain_sum")
    assert _score(task, "-2", f"<answer>{minus}2</answer>") == 1.0
    assert _score(task, "-2", f"so it is {minus}2") == 1.0
    assert _score(task, "2", f"<answer>{minus}2</answer>") == 0.0


@pytest.mark.parametrize("answer,gold", [("\uff11\uff13", "13"), ("\uff11\uff13\u3002", "13"), ("1\u2009250", "1250"),
                                         ("1\u202f250", "1250"), ("\u00a013\u00a0", "13"), ("\uff0d\uff17", "-7")])
def test_full_width_digits_and_odd_spaces(answer, gold):
    assert parse_number(answer) == int(gold)
    assert _score(get_task("gsm_symbolic"), gold, f"<answer>{answer}</answer>") == 1.0
    assert _score(get_task("gsm_symbolic"), gold, f"so it is {answer}") == 1.0


# --- 4. \boxed with nested braces ------------------------------------------------------------------

@pytest.mark.parametrize("gold,completion", [
    ("\\frac{63}{400}", "so \\boxed{\\frac{63}{400}}"),
    ("\\frac{63}{400}", "<answer>\\boxed{\\frac{63}{400}}</answer>"),
    ("\\frac{63}{400}", "first \\boxed{1} then \\boxed{\\frac{63}{400}}"),  # the last box wins
    ("\\frac{63}{400}", "\\boxed{\\frac{63}{400}} and a cut-off \\boxed{\\frac{1"),  # unclosed: the one before
    ("3/4", "**Final Answer**\n\\boxed{\\frac{3}{4}}"),
    ("3/4", "\\fbox{\\frac{3}{4}}"),
    ("\\sqrt{2}", "\\boxed{\\sqrt{2}}"),
    ("0.1575", "$\\boxed{\\dfrac{63}{400}}$."),
])
def test_nested_boxes_are_extracted(tmp_path, gold, completion):
    task = _jsonl(tmp_path, gold)
    assert _score(task, gold, completion) == 1.0
    assert _score(task, gold, completion.replace("63", "64").replace("{3}", "{5}").replace("{2}", "{3}")) == 0.0


# --- 5. gold answers are parsed for what they are ----------------------------------------------------

@pytest.mark.parametrize("gold,answer,right", [
    ("-3, 4", "4", 0.0), ("-3, 4", "-3, 4", 1.0), ("-3, 4", "4, -3", 1.0), ("-3, 4", "\\{-3, 4\\}", 1.0),
    ("0,1", "0, 1", 1.0), ("0,1", "0.1", 0.0), ("0,1", "1", 0.0),
    ("1,250", "1250", 1.0), ("1250", "1,250", 1.0), ("1,250", "1.25", 0.0),
    ("(0, 1)", "(0,1)", 1.0),
    ("x + 1", "1 + x", 1.0), ("x + 1", "x + 2", 0.0),
    ("B", "(B)", 1.0), ("B", "Option B", 1.0), ("B", "C", 0.0), ("B", "The answer is B", 1.0),
    ("B", "I think B", 0.0), ("A", "A and B", 0.0), ("B", "(B) because it is larger", 1.0),
    ("Paris", "paris.", 1.0), ("Paris", "London", 0.0),
])
def test_jsonl_golds_are_checked_by_their_kind(tmp_path, gold, answer, right):
    assert _score(_jsonl(tmp_path, gold), gold, f"<answer>{answer}</answer>") == right


@pytest.mark.parametrize("gold,kind", [("1,250", "number"), ("0,1", "list"), ("-3, 4", "list"), ("(0, 1)", "list"),
                                       ("B", "choice"), ("\\frac{1}{2}", "number"), ("x+1", "expression"),
                                       ("\\sqrt{2}", "expression"), ("Paris", "text")])
def test_kind_of_a_gold_answer(gold, kind):
    assert kind_of(gold) == kind


# --- 6. the format reward sees the prompt -------------------------------------------------------------

OPENED = "<|User|>What is 2 + 2?<|Assistant|><think>\n"  # R1-Distill's template ends the prompt so


@pytest.mark.parametrize("name,expected", [("format", 1.0), ("tags", 1.0)])
def test_a_think_opened_by_the_prompt_counts(name, expected):
    fn = _reward(get_task("chain_sum"), name)
    completion = "2 + 2 = 4</think><answer>4</answer>"
    assert fn([completion], prompts=[OPENED]) == [expected]
    assert fn([completion], prompts=["What is 2 + 2?"])[0] < 1.0  # the prompt did not open it
    assert fn(["<think>again</think>" + completion], prompts=[OPENED])[0] < 1.0  # two opening tags


def test_evaluation_and_traces_read_the_prompt_the_same_way():
    from workbench.analysis import traces
    from workbench.analysis.evaluate import sampled_metrics

    completion = "2 + 2 = 4, let me check: 4 - 2 = 2. wait, yes.</think><answer>4</answer>"
    assert traces.tag(completion, OPENED)["format_ok"] is True
    assert traces.tag(completion)["format_ok"] is False
    sampled = {"questions": 1, "n": 1, "temperature": 1.0, "items": [{"id": "q0", "question": "q", "answer": "4", "prompt_opens_think": True,
                          "samples": [{"completion": completion, "correct": True, "tokens": 10}]}]}
    assert sampled_metrics(sampled, get_task("chain_sum"))["format_valid"] == 1.0
    sampled["items"][0]["prompt_opens_think"] = False
    assert sampled_metrics(sampled, get_task("chain_sum"))["format_valid"] == 0.0


# --- 7. non-finite rewards are failures, counted ----------------------------------------------------

@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_rewards_are_counted_as_errors(bad):
    errors, metrics = [], {}

    def reward(completions, **kwargs):
        return [1.0 if c == "ok" else bad for c in completions]

    safe = SafeReward(reward, on_error=lambda name, i, exc: errors.append((name, i, str(exc))))
    out = safe(["ok", "bad", "ok"], log_metric=lambda n, v: metrics.__setitem__(n, v))
    assert out == [1.0, None, 1.0]
    assert [(name, i) for name, i, _ in errors] == [("reward", 1)]
    assert metrics["reward_errors/reward"] == 1


# --- 8. cons@k votes with the task's equality ----------------------------------------------------------

def test_cons_at_k_groups_answers_the_task_judges_equal(tmp_path):
    task = _jsonl(tmp_path, "\\frac{63}{400}")
    item = task.item("train", 0)
    votes = ["0.1575", "\\frac{63}{400}", "0.2", "0.2", "\\dfrac{63}{400}"]
    winner = majority_vote(votes, same=lambda a, b: task.same_answer(a, b, item))
    assert task.score(winner, item) == 1.0
    assert majority_vote(votes) == "0.2"  # by string, the vote splits and the wrong answer wins
    number = get_task("chain_sum")
    assert majority_vote(["1,250", "1250", "7", "7"], same=lambda a, b: number.same_answer(a, b, {})) == "1,250"
    # countdown: a bare target is not the same answer as an expression that reaches it
    countdown = get_task("countdown")
    votes = ["94", "17*5 + 9", "17*5 + 9", "94 "]
    assert majority_vote(votes, same=lambda a, b: countdown.same_answer(a, b, {})) == "94"
    assert majority_vote(votes[:3], same=lambda a, b: countdown.same_answer(a, b, {})) == "17*5 + 9"


# --- every task: its gold scores 1 in every wrapping, a plainly wrong answer 0 ----------------------

GOLD_WRAPPINGS = ["<think>.</think> <answer>{a}</answer>", "\\boxed{{{a}}}", "The answer is {a}",
                  "**Final Answer**\n{a}", "<answer>${a}$</answer>"]


@pytest.mark.parametrize("name", [name for name, _ in list_tasks() if name != "python_functions"])
def test_every_task_scores_its_gold_answer_in_every_wrapping(name):
    task = get_task(name)
    for item in task.items("eval", 5):
        for wrapping in GOLD_WRAPPINGS:
            completion = wrapping.format(a=item["answer"])
            assert task.score(extract_answer(completion, task.answer_kind), item) == 1.0, (name, completion)
        assert task.score(extract_answer("<answer>zebra 99999</answer>", task.answer_kind), item) == 0.0


def test_answers_equal_refuses_code_and_unknown_kinds():
    for kind in ("code", "poem"):
        with pytest.raises(ValueError, match="valid kinds"):
            answers_equal("1", "1", kind)


# --- the rewards issue's own examples, each with the value it names ----------------------------------

def test_the_examples_of_the_rewards_issue(tmp_path):
    chain, gsm = get_task("chain_sum"), get_task("gsm_symbolic")
    counter = iter(range(100))

    def jsonl(gold):
        folder = tmp_path / str(next(counter))
        folder.mkdir()
        return _jsonl(folder, gold)

    cases = [  # (task, gold, completion, the value the issue names)
        (chain, "13", "<answer>\\boxed{13}</answer>", 1.0),
        (gsm, "1250", "<answer>1,250</answer>", 1.0),
        (chain, "2", "<answer>-2</answer>", 0.0),
        (gsm, "44", "<answer>-44</answer>", 0.0),
        (chain, "-2", "\u22122", 1.0),
        (jsonl("\\frac{63}{400}"), "\\frac{63}{400}", "\\boxed{\\frac{63}{400}}", 1.0),
        (jsonl("3/4"), "3/4", "**Final Answer**\n\\boxed{\\frac{3}{4}}", 1.0),
        (jsonl("-3, 4"), "-3, 4", "<answer>4</answer>", 0.0),
        (jsonl("0,1"), "0,1", "<answer>0, 1</answer>", 1.0),
        (jsonl("0,1"), "0,1", "<answer>0.1</answer>", 0.0),
    ]
    for task, gold, completion, right in cases:
        assert _score(task, gold, completion) == right, (gold, completion)
    fmt = _reward(chain, "format")
    assert fmt(["2 + 2 = 4</think><answer>4</answer>"], prompts=[OPENED]) == [1.0]
    task = jsonl("\\frac{63}{400}")
    item = task.item("train", 0)
    votes = ["0.1575", "\\frac{63}{400}", "0.2", "0.2", "\\frac{63}{400}"]
    assert task.score(majority_vote(votes, same=lambda a, b: task.same_answer(a, b, item)), item) == 1.0


def test_a_jsonl_row_can_declare_its_kind_and_an_ordered_list(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"question": "roots, smallest first", "answer": "2, 3", "ordered": True},
            {"question": "the roots", "answer": "2, 3"},
            {"question": "a word", "answer": "12", "answer_kind": "text"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = JsonlTask(path, heldout_fraction=0.0)
    ordered, unordered, text = (task.item("train", i) for i in range(3))
    assert task.score("2, 3", ordered) == 1.0 and task.score("3, 2", ordered) == 0.0
    assert task.score("3, 2", unordered) == 1.0 and task.score("2", unordered) == 0.0
    assert task.score("12", text) == 1.0 and task.score("12.0", text) == 0.0  # compared as text, as declared
