"""Tests for workbench.tasks: the oracle/garbage invariant over every task, the held-out split,
determinism, JSONL files and the registry's errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.tasks import JsonlTask, UnknownTaskError, get_task, is_heldout, list_tasks
from workbench.tasks.base import ANSWER_KINDS

GARBAGE = ["", None, "garbage xyz", "   "]
REPO = Path(__file__).resolve().parents[1]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def jsonl_path(tmp_path):
    rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i), "source": "unit"} for i in range(40)]
    rows.append({"question": "Name the capital of France.", "answer": "Paris"})
    return _jsonl(tmp_path / "toy.jsonl", rows)


def _all_tasks(jsonl_path):
    names = [name for name, _ in list_tasks()]
    return [get_task(name) for name in names] + [get_task(str(jsonl_path))]


def test_registry_has_the_documented_tasks():
    names = [name for name, _ in list_tasks()]
    for name in ("chain_sum", "chain_sum_2digit", "countdown", "gsm_symbolic", "basic_arithmetic"):
        assert name in names
    assert all(description for _, description in list_tasks())


def test_every_task_scores_gold_one_and_garbage_zero(jsonl_path):
    for task in _all_tasks(jsonl_path):
        assert task.answer_kind in ANSWER_KINDS
        items = task.items("train", 4) + task.items("eval", 4)
        assert len(items) >= 5, task.name
        for item in items:
            assert set(item) == {"id", "question", "answer", "metadata"}
            assert isinstance(item["question"], str) and isinstance(item["answer"], str)
            json.dumps(item["metadata"])  # JSON-safe
            assert task.score(item["answer"], item) == 1.0, (task.name, item)
            for bad in GARBAGE:
                assert task.score(bad, item) == 0.0, (task.name, bad, item)


def test_participation_credit_is_not_accuracy():
    # reasoning-gym's countdown gives 0.01 to any unparseable answer; that must count as wrong.
    task = get_task("countdown")
    item = task.item("eval", 0)
    raw = task._verify("garbage xyz", item)
    assert 0 < raw <= 0.01
    assert task.score("garbage xyz", item) == 0.0


def test_verifier_exceptions_score_zero():
    task = get_task("chain_sum")
    item = task.item("train", 0)
    broken = {**item, "answer": None}  # chain_sum's verifier raises on a None gold answer
    assert task.score("3", broken) == 0.0


def test_items_are_deterministic_and_ids_stable():
    a = get_task("chain_sum_2digit", seed=3)
    b = get_task("chain_sum_2digit", seed=3)
    assert a.items("train", 50) == b.items("train", 50)
    assert a.items("eval", 20) == b.items("eval", 20)
    # Random access agrees with the walk, in any order.
    assert b.item("train", 37) == a.items("train", 40)[37]
    assert a.item("eval", 5)["id"] == "chain_sum_2digit/eval/5"
    assert get_task("chain_sum_2digit", seed=4).items("train", 20) != a.items("train", 20)


def test_items_are_the_same_in_another_process():
    # hash() of a str is salted per process; the split and the items must not be.
    code = (
        "from workbench.tasks import get_task; t = get_task('chain_sum_2digit', seed=1); "
        "print([i['question'] for i in t.items('train', 30) + t.items('eval', 10)])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=REPO)
    task = get_task("chain_sum_2digit", seed=1)
    here = [i["question"] for i in task.items("train", 30) + task.items("eval", 10)]
    assert out.stdout.strip() == str(here)


def test_cached_items_cannot_be_mutated_by_callers():
    task = get_task("chain_sum")
    task.item("train", 0)["metadata"]["num_terms"] = 99
    assert task.item("train", 0)["metadata"]["num_terms"] == 2


def test_heldout_never_overlaps_train_small_space():
    task = get_task("chain_sum")
    # All 200 questions of 2-term 1-digit chain_sum: the held-out rule splits this space exactly.
    space = {
        f"State the final answer to the following arithmetic problem: {a} {op} {b} ="
        for a in range(10)
        for b in range(10)
        for op in "+-"
    }
    train = [i["question"] for i in task.items("train", 300)]
    evals = [i["question"] for i in task.items("eval", 150)]
    assert len(evals) == len(set(evals)), "eval items must be distinct questions"
    assert not set(train) & set(evals)
    expected_eval = {q for q in space if is_heldout(q, task.heldout_fraction)}
    assert 60 < len(expected_eval) < 140  # heldout_fraction 0.5 of 200
    assert set(evals) == expected_eval  # every held-out question is found, and nothing else
    assert set(train) <= space - expected_eval
    assert len(train) == 300  # train repeats questions rather than running out


def test_heldout_never_overlaps_train_larger_task():
    task = get_task("gsm_symbolic", seed=7)
    train = {i["question"] for i in task.items("train", 400)}
    evals = [i["question"] for i in task.items("eval", 100)]
    assert len(evals) == 100 == len(set(evals))
    assert not train & set(evals)
    assert all(is_heldout(q, task.heldout_fraction) for q in evals)
    assert not any(is_heldout(q, task.heldout_fraction) for q in train)


def test_eval_split_stops_when_question_space_runs_out():
    task = get_task("chain_sum")
    found = task.items("eval", 500)
    assert 60 < len(found) < 140
    with pytest.raises(IndexError):
        task.item("eval", 499)


def test_unknown_task_lists_choices():
    with pytest.raises(UnknownTaskError) as e:
        get_task("chain_summ")
    msg = str(e.value)
    assert "chain_summ" in msg
    for name, _ in list_tasks():
        assert name in msg
    assert "reasoning-gym" in msg and ".jsonl" in msg
    assert isinstance(e.value, ValueError)


def test_registered_task_options_can_be_overridden():
    task = get_task("chain_sum", max_digits=3, min_digits=3)
    assert task.item("train", 0)["metadata"]["num_digits"] == 3


def test_any_reasoning_gym_dataset_by_name():
    task = get_task("leg_counting", seed=2, min_animals=2, max_animals=3)
    assert task.name == "leg_counting"
    assert task.answer_kind == "number"  # inferred from numeric gold answers
    item = task.item("train", 0)
    assert item["metadata"]["source_dataset"] == "leg_counting"
    assert task.score(item["answer"], item) == 1.0
    assert task.score(str(int(item["answer"]) + 1), item) == 0.0


def test_bad_reasoning_gym_options_are_named():
    with pytest.raises(ValueError, match="min_animalz"):
        get_task("leg_counting", min_animalz=2)
    with pytest.raises(ValueError, match="leg_counting"):
        get_task("leg_counting", min_animals=5, max_animals=2)  # fails the config's validate()
    with pytest.raises(ValueError, match="size"):
        get_task("chain_sum", size=10)


def test_jsonl_task_split_order_and_wraparound(jsonl_path):
    task = get_task(str(jsonl_path))
    assert isinstance(task, JsonlTask) and task.name == "toy"
    assert task.answer_kind == "text"  # "Paris" is not a number
    train, evals = task.split_size("train"), task.split_size("eval")
    assert train + evals == 41 and train > 0 and evals > 0
    first = task.item("train", 0)
    assert task.item("train", train)["question"] == first["question"]  # wraps around
    with pytest.raises(IndexError):
        task.item("eval", evals)
    assert len(task.items("eval", 100)) == evals
    assert not {i["question"] for i in task.items("train", train)} & {i["question"] for i in task.items("eval", evals)}
    # File order within a split.
    rows = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    in_train = [r["question"] for r in rows if not is_heldout(r["question"], task.heldout_fraction)]
    assert [i["question"] for i in task.items("train", train)] == in_train


def test_jsonl_scoring_math_and_text(tmp_path):
    rows = [{"question": f"q{i}", "answer": a} for i, a in enumerate(["0.5", "New  York", "1234"])]
    path = _jsonl(tmp_path / "m.jsonl", rows)
    task = get_task(str(path), heldout_fraction=0.0)
    half, city, big = task.items("train", 3)
    assert task.score("1/2", half) == 1.0  # math-verify
    assert task.score("0.50", half) == 1.0
    assert task.score("0.6", half) == 0.0
    assert task.score(" new york ", city) == 1.0  # normalised text
    assert task.score("Boston", city) == 0.0
    assert task.score("1,234", big) == 1.0
    assert task.item("train", 0)["metadata"] == {}


def test_jsonl_extra_keys_kept_in_metadata(jsonl_path):
    task = get_task(str(jsonl_path), heldout_fraction=0.0)
    assert task.item("train", 0)["metadata"] == {"source": "unit"}


def test_jsonl_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n\n{"question": "b", "answer": \n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:3"):
        get_task(str(path))


def test_jsonl_missing_key_names_file_line_and_key(tmp_path):
    path = tmp_path / "missing.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n{"question": "b"}\n')
    with pytest.raises(ValueError, match=r"missing\.jsonl:2.*'answer'"):
        get_task(str(path))
    path.write_text('{"answer": "1"}\n')
    with pytest.raises(ValueError, match=r"missing\.jsonl:1.*'question'"):
        get_task(str(path))


def test_task_module_imports_without_torch():
    code = "import sys, workbench.tasks, workbench.rewards, workbench.templates; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"
