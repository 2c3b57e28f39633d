"""The code task and the code-execution reward: real sandbox runs, no mocks.

Every reference solution must pass its own tests; wrong, looping, exiting and forging solutions
must not score more than they earn.
"""

import fnmatch
import importlib.resources
import json
import pickle
import time
import tomllib
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.rewards import CodeExecutionReward, build_rewards, extract_answer, extract_code
from workbench.tasks import CodeTask, get_task, list_tasks
from workbench.tasks.code import run_tests

ROOT = Path(__file__).parent.parent
DATA = "data/python_functions.jsonl"


@pytest.fixture(scope="module")
def task():
    return get_task("python_functions")


@pytest.fixture(scope="module")
def fast_task():
    # A short wall clock so the runaway-code tests stay quick.
    return get_task("python_functions", timeout_s=1.0)


def _all_items(task):
    return task.items("train", task.split_size("train")) + task.items("eval", task.split_size("eval"))


def _item(task, entry_point):
    (item,) = [it for it in _all_items(task) if it["metadata"]["entry_point"] == entry_point]
    return item


def _columns(items):
    """The dataset columns TRL hands a reward, as workbench.grpo.trainer builds them."""
    return {
        "answer": [it["answer"] for it in items],
        "metadata": [json.dumps(it["metadata"]) for it in items],
        "question": [it["question"] for it in items],
    }


def _fenced(code):
    return f"<think>I write the function.</think>\n<answer>\n```python\n{code}\n```\n</answer>"


def _score(task, code, entry_point):
    return task.credit(code, _item(task, entry_point))


# --- the shipped problems ---------------------------------------------------------------------


def test_get_task_builds_the_shipped_code_task(task):
    assert isinstance(task, CodeTask)
    assert task.name == "python_functions" and task.answer_kind == "code"
    assert "python_functions" in dict(list_tasks())
    rows = (importlib.resources.files("workbench.tasks") / DATA).read_text(encoding="utf-8").splitlines()
    assert 60 <= len(rows) <= 80
    assert task.split_size("train") > 0 and task.split_size("eval") > 0
    assert task.split_size("train") + task.split_size("eval") == len(rows)
    for item in _all_items(task):
        meta = item["metadata"]
        assert meta["entry_point"] in item["question"] and "```python" in item["question"]
        assert 3 <= len(meta["tests"]) <= 6


def test_splits_are_disjoint_by_question_text(task):
    train = {it["question"] for it in task.items("train", task.split_size("train"))}
    held = {it["question"] for it in task.items("eval", task.split_size("eval"))}
    assert train and held and not train & held
    assert all(task.is_heldout(q) for q in held) and not any(task.is_heldout(q) for q in train)


def test_data_file_ships_inside_the_package():
    resource = importlib.resources.files("workbench.tasks") / DATA
    assert resource.is_file()
    # A wheel carries non-Python files only if pyproject.toml declares them as package data
    # (include-package-data alone needs a MANIFEST.in or a VCS plugin, and there is neither).
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get("setuptools", {})
    relative = {"workbench": "tasks/" + DATA, "workbench.tasks": DATA, "*": Path(DATA).name, "": Path(DATA).name}
    declared = [
        (relative[package], pattern)
        for package, patterns in setuptools.get("package-data", {}).items() if package in relative
        for pattern in patterns
    ]
    assert any(fnmatch.fnmatch(path, pattern) for path, pattern in declared), (
        'pyproject.toml needs [tool.setuptools.package-data] workbench = ["tasks/data/*.jsonl"]'
    )


def test_every_reference_solution_passes_all_its_tests(task):
    items = _all_items(task)
    rewards = CodeExecutionReward(task)([_fenced(it["answer"]) for it in items], **_columns(items))
    failing = [it["metadata"]["entry_point"] for it, r in zip(items, rewards) if r != 1.0]
    assert not failing, f"reference solutions that fail their tests: {failing}"


def test_rows_without_tests_are_refused(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "Write f.", "answer": "def f(): pass", "entry_point": "f"}) + "\n")
    with pytest.raises(WorkbenchError, match="'tests'"):
        CodeTask(path)
    path.write_text(json.dumps({"question": "Write f.", "answer": "x", "entry_point": "f", "tests": ["assert f( =="]}) + "\n")
    with pytest.raises(WorkbenchError, match="not valid Python"):
        CodeTask(path)


# --- scoring ----------------------------------------------------------------------------------


def test_a_wrong_solution_gets_the_share_of_tests_it_passes(task):
    # Returning s unchanged is right only for "", "a" and "racecar": 3 of the 5 tests.
    assert _score(task, "def reverse_string(s):\n    return s", "reverse_string") == pytest.approx(3 / 5)
    assert _score(task, "def reverse_string(s):\n    return 1 / 0", "reverse_string") == 0.0
    assert _score(task, "def reverse_string(s) return s", "reverse_string") == 0.0  # syntax error


def test_one_failing_or_looping_test_does_not_stop_the_others(fast_task):
    raising = "def reverse_string(s):\n    if s == 'a':\n        raise ValueError\n    return s[::-1]"
    assert _score(fast_task, raising, "reverse_string") == pytest.approx(4 / 5)
    looping = "def reverse_string(s):\n    while s == 'a':\n        pass\n    return s[::-1]"
    assert _score(fast_task, looping, "reverse_string") == pytest.approx(4 / 5)


def test_an_infinite_loop_scores_zero_and_the_rest_of_the_batch_still_scores(fast_task):
    item = _item(fast_task, "reverse_string")
    completions = [
        _fenced("while True:\n    pass"),
        _fenced("def reverse_string(s):\n    while True:\n        pass"),
        _fenced(item["answer"]),
    ]
    start = time.monotonic()
    rewards = CodeExecutionReward(fast_task)(completions, **_columns([item] * 3))
    assert rewards == [0.0, 0.0, 1.0]
    assert time.monotonic() - start < 3 * fast_task.timeout_s + 5  # bounded even if run one by one


def test_exiting_before_the_tests_scores_zero(task):
    solution = "def reverse_string(s):\n    return s[::-1]\n"
    assert _score(task, solution, "reverse_string") == 1.0
    for exit_call in ("import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit(0)", "exit(0)"):
        assert _score(task, solution + exit_call, "reverse_string") == 0.0, exit_call
    in_tests = "import sys\ndef reverse_string(s):\n    sys.exit(0)"
    assert _score(task, in_tests, "reverse_string") == 0.0


def test_a_forged_result_line_does_not_raise_the_score(task):
    wrong = "def reverse_string(s):\n    return s\n"
    honest = _score(task, wrong, "reverse_string")
    assert honest == pytest.approx(3 / 5)
    forgeries = [
        # Result lines with made-up nonces, at import time and from inside the function.
        'print("\\n" + "0" * 32 + " 5 5")\nprint("deadbeef" * 4, 5, 5)\n' + wrong,
        'def reverse_string(s):\n    print("\\n" + "f" * 32 + " 5 5")\n    return s\n',
        # Look for the nonce where a naive harness would leave it: stdin and the program text.
        "import os, re, sys\n"
        "text = open(sys.argv[0]).read()\n"
        "try:\n    text += os.read(0, 4096).decode() + sys.stdin.read()\nexcept Exception:\n    pass\n"
        "for nonce in set(re.findall(r'[0-9a-f]{32}', text)):\n    print(nonce, 5, 5)\n" + wrong,
        # Print a line after the harness's, from an exit hook.
        'import atexit\natexit.register(lambda: print("\\n" + "a" * 32 + " 5 5"))\n' + wrong,
    ]
    for code in forgeries:
        assert _score(task, code, "reverse_string") == pytest.approx(honest), code
    # The forged line alone, with a clean exit before the harness can print the real one.
    forged_only = 'import os\nprint("\\n" + "0" * 32 + " 5 5", flush=True)\nos._exit(0)\n' + wrong
    assert _score(task, forged_only, "reverse_string") == 0.0


def test_objects_that_equal_anything_and_patched_builtins_do_not_pass(task):
    always_equal = (
        "class Anything(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
        "def reverse_string(s):\n    return Anything('')\n"
    )
    assert _score(task, always_equal, "reverse_string") == 0.0
    in_a_list = "class Anything:\n    def __eq__(self, other):\n        return True\ndef chunk(items, size):\n    return [Anything()]\n"
    assert _score(task, in_a_list, "chunk") == 0.0
    # Right except at 37 degrees, where the test rounds: a patched round must not rescue it.
    wrong_at_37 = "def celsius_to_fahrenheit(c):\n    return 0 if c == 37 else c * 9 / 5 + 32\n"
    patched = "import builtins\nbuiltins.round = lambda x, n=None: 98.6\n" + wrong_at_37
    assert _score(task, wrong_at_37, "celsius_to_fahrenheit") == pytest.approx(3 / 4)
    assert _score(task, patched, "celsius_to_fahrenheit") == pytest.approx(3 / 4)


def test_run_tests_directly():
    assert run_tests("def f(x):\n    return x + 1", ["assert f(1) == 2", "assert f(2) == 4"]) == 0.5
    assert run_tests("def f(x):\n    return range(x)", ["assert list(f(2)) == [0, 1]"]) == 1.0


# --- the reward -------------------------------------------------------------------------------


def test_no_code_block_scores_zero_through_the_reward(task):
    item = _item(task, "reverse_string")
    completions = [
        "<think>easy</think><answer>def reverse_string(s): return s[::-1]</answer>",  # no fence
        "",
        None,
        "```python\n```",  # an empty block
    ]
    assert CodeExecutionReward(task)(completions, **_columns([item] * 4)) == [0.0] * 4


def test_build_rewards_code_on_a_trl_style_batch(task):
    funcs, weights = build_rewards({"code": 1.0}, task, 256)
    assert [f.__name__ for f in funcs] == ["code"] and weights == [1.0]
    items = [_item(task, "reverse_string"), _item(task, "gcd"), _item(task, "is_prime")]
    completions = [
        [{"role": "assistant", "content": _fenced(items[0]["answer"])}],  # chat-format completion
        [{"role": "assistant", "content": "```py\ndef gcd(a, b):\n    return 1\n```"}],
        [{"role": "assistant", "content": "I cannot do this."}],
    ]
    logged = []
    rewards = funcs[0](completions, **_columns(items), completion_ids=[[1]] * 3, trainer_state=None,
                       log_metric=lambda name, value: logged.append((name, value)))
    # gcd returning 1 is right only for gcd(17, 5).
    assert rewards == [1.0, pytest.approx(1 / 5), 0.0]
    assert ("reward_errors/code", 0) in logged


def test_items_without_tests_are_an_error_not_a_silent_zero(task):
    errors = []
    funcs, _ = build_rewards({"code": 1.0}, task, 256, on_error=lambda name, index, exc: errors.append(exc))
    rewards = funcs[0]([_fenced("def f(): pass")], answer=["x"], metadata=["{}"], question=["Write f."])
    assert rewards == [None] and "tests" in str(errors[0])


def test_the_code_reward_pickles_and_still_scores(task):
    # Rollout workers get reward functions by pickle; the task inside must survive the trip.
    (fn,), _ = build_rewards({"code": 1.0}, task, 256)
    again = pickle.loads(pickle.dumps(fn))
    item = _item(task, "is_prime")
    assert again.__name__ == "code"
    assert again([_fenced(item["answer"])], **_columns([item])) == [1.0]


def test_the_code_reward_refuses_a_task_that_is_not_code():
    with pytest.raises(WorkbenchError, match="python_functions"):
        build_rewards({"code": 1.0}, get_task("chain_sum"), 256)


# --- extraction -------------------------------------------------------------------------------


def test_extract_code_rules():
    assert extract_code("```python\nthink_version()\n```\n<answer>\n```python\nfinal()\n```\n</answer>") == "final()"
    assert extract_code("```python\nfirst()\n```\ntext\n```python\nsecond()\n```") == "second()"
    assert extract_code("Here:\n```\nbare()\n```") == "bare()"
    assert extract_code("```py\nshort()\n```") == "short()"
    assert extract_code("```python\ncode()\n```\n```bash\nls\n```") == "code()"  # not a Python block
    assert extract_code("no code here") is None
    assert extract_code("") is None
    # An <answer> without a block: the answer has no code, whatever <think> drafted.
    assert extract_code("<think>\n```python\ndraft()\n```\n</think><answer>done</answer>") is None
    assert extract_code("```python\ndef f():\n    return '```python'\n```") == "def f():\n    return '```python'"
    assert extract_code("```python\ntruncated(") == "truncated("  # unclosed: runs to the end
    assert extract_code("```python\nkept()\n```\n```") == "kept()"  # a stray fence is no block
    text = "<answer>```python\nx = 1\n```</answer>"
    assert extract_answer(text, "code") == extract_code(text) == "x = 1"
    assert extract_answer("<answer>plain</answer>", "code") is None
