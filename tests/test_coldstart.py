"""Cold-start data: parsed, worked, verified, train-only, deterministic; the shipped file is current."""

from fractions import Fraction
from pathlib import Path
from random import Random

import pytest

import workbench
from workbench.cli.data import cmd_coldstart
from workbench.stages.cold_start import (SUPPORTED_TASKS, build_cold_start, parse_expression, question_expression,
                                 solve, worked_solutions)
from workbench.errors import WorkbenchError
from workbench.rewards.extract import extract_answer
from workbench.rewards.rules import FormatReward
from workbench.stages.sft_data import read_sft_jsonl
from workbench.tasks import get_task
from workbench.tasks.base import Task
from workbench.templates import system_prompt

SHIPPED = Path(workbench.__file__).parent / "stages" / "data" / "cold_start_chain_sum.jsonl"


def _value(text: str) -> Fraction:
    return solve(parse_expression(text))[1][-1].value


def test_parser_precedence_unary_minus_and_brackets():
    assert _value("4 - 7") == -3
    assert _value("-41 - -98 / 14") == -34
    assert _value("-( -( ( -59 + 21 ) - 40 ) ) + -96") == -174
    assert _value("( ( -9 - 6 ) - -( -3 * 4 ) )") == -27
    assert _value("8 - 3 - 2") == 3  # left-associative
    assert _value("1 / 4") == Fraction(1, 4)


@pytest.mark.parametrize("task_name", SUPPORTED_TASKS)
def test_parser_agrees_with_the_gold_answers(task_name):
    task = get_task(task_name)
    for item in task.items("train", 150):
        assert str(_value(question_expression(item["question"], task_name))) == item["answer"], item["question"]


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "2 +", "(1 + 2", "2 ** 3", "1 +* 2", "x + 1", ""])
def test_the_parser_refuses_what_it_cannot_read(text):
    with pytest.raises(WorkbenchError, match="cannot parse"):
        parse_expression(text)


def test_a_question_without_an_expression_is_a_clear_error():
    with pytest.raises(WorkbenchError, match="cannot read an arithmetic expression.*capital of France"):
        question_expression("What is the capital of France?", "chain_sum")
    with pytest.raises(WorkbenchError, match="division by zero"):
        worked_solutions("Calculate 3 / 0.", "basic_arithmetic", lambda style: Random(0))


def test_unsupported_task_names_the_supported_ones():
    with pytest.raises(WorkbenchError, match=r"no worked-solution writer for task 'countdown'; supported tasks: chain_sum"):
        build_cold_start("countdown", 5)


class _MixedTask(Task):
    """chain_sum-shaped questions, one of which no parser could read."""

    name, answer_kind = "chain_sum", "number"
    questions = ["State the final answer to the following arithmetic problem: 2 + 3 =",
                 "State the final answer to the following arithmetic problem: two plus three =",
                 "State the final answer to the following arithmetic problem: 5 - 8 ="]

    def item(self, split, index):
        q = self.questions[index % len(self.questions)]
        answer = {0: "5", 1: "5", 2: "-3"}[index % len(self.questions)]
        return {"id": f"mixed/{split}/{index}", "question": q, "answer": answer, "metadata": {}}

    def _verify(self, answer, item):
        return float(answer.strip() == item["answer"])


def test_unparseable_questions_are_skipped_and_counted():
    stats = {}
    with pytest.warns(UserWarning, match="only"):
        rows = build_cold_start(_MixedTask(), 50, stats=stats)
    assert stats["questions"] == 3 and stats["unparseable"] == 1
    assert {r["messages"][1]["content"] for r in rows} == {_MixedTask.questions[0], _MixedTask.questions[2]}


def test_every_style_shows_work_and_a_check():
    sols = worked_solutions("State the final answer to the following arithmetic problem: 4 - 7 =", "chain_sum",
                            lambda style: Random(style))
    assert set(sols) == {"steps", "count", "self_correct", "recheck"}
    for style, text in sols.items():
        assert text.startswith("<think>\n") and text.endswith("</think>\n<answer>-3</answer>"), style
        assert "-3 + 7 = 4" in text, style  # the check works the subtraction backwards
    assert "Wait" in sols["self_correct"] and "Wait" in sols["recheck"]
    multi = worked_solutions("Calculate -41 - -98 / 14.", "basic_arithmetic", lambda style: Random(style))
    assert set(multi) == {"steps", "recheck", "rewrite"}


@pytest.mark.parametrize("task_name", SUPPORTED_TASKS)
def test_rows_verify_come_from_train_only_and_are_unique(task_name):
    task = get_task(task_name)
    rows = build_cold_start(task_name, 120, seed=0)
    assert len(rows) == 120
    keys = {(r["messages"][1]["content"], r["messages"][2]["content"]) for r in rows}
    assert len(keys) == len(rows)
    for r in rows:
        question, text = r["messages"][1]["content"], r["messages"][2]["content"]
        assert not task.is_heldout(question)
        item = task.item("train", int(r["provenance"]["item_id"].rsplit("/", 1)[1]))
        assert item["question"] == question
        assert task.score(extract_answer(text, task.answer_kind), item) == 1.0
        assert FormatReward()([text]) == [1.0]


def test_deterministic_for_a_seed_and_different_across_seeds():
    assert build_cold_start("chain_sum", 40, seed=3) == build_cold_start("chain_sum", 40, seed=3)
    assert build_cold_start("chain_sum", 40, seed=3) != build_cold_start("chain_sum", 40, seed=4)


def test_chain_sum_reaches_hundreds_of_rows_from_about_a_hundred_questions():
    stats = {}
    rows = build_cold_start("chain_sum", 300, stats=stats)
    assert len(rows) == 300 and stats["questions"] <= 110
    assert len(stats["by_style"]) >= 4


def test_shipped_file_is_what_the_generator_writes_now():
    shipped = read_sft_jsonl(SHIPPED)
    assert shipped == build_cold_start("chain_sum", 300, seed=0), (
        "regenerate: workbench coldstart --task chain_sum --n 300 "
        "--output workbench/stages/data/cold_start_chain_sum.jsonl")


def test_shipped_rows_verify_and_hold_no_heldout_question():
    task = get_task("chain_sum")
    eval_questions = {it["question"] for it in task.items("eval", 200)}
    rows = read_sft_jsonl(SHIPPED)
    assert len(rows) == 300
    for r in rows:
        system, user, assistant = r["messages"]
        assert system == {"role": "system", "content": system_prompt("chat_think")}
        assert user["content"] not in eval_questions and not task.is_heldout(user["content"])
        item = task.item("train", int(r["provenance"]["item_id"].rsplit("/", 1)[1]))
        assert item["question"] == user["content"]
        assert task.score(extract_answer(assistant["content"], "number"), item) == 1.0
        assert FormatReward()([assistant["content"]]) == [1.0]
        assert r["provenance"]["source"] == "coldstart" and r["provenance"]["generator"] == "workbench.stages.cold_start"


def test_main_writes_a_readable_file(tmp_path, capsys):
    out = tmp_path / "cs.jsonl"
    assert cmd_coldstart(["--task", "chain_sum_2digit", "--n", "12", "--output", str(out)]) == 0
    assert len(read_sft_jsonl(out)) == 12
    assert "wrote 12 rows" in capsys.readouterr().out
