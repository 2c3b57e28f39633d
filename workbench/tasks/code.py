"""Function-writing tasks: the answer is Python code, scored by the share of unit tests it passes.

    from workbench.tasks import CodeTask, get_task
    task = get_task("python_functions")          # 80 small problems shipped with the package
    item = task.item("train", 0)                 # metadata: {"entry_point": ..., "tests": [...]}
    task.score(item["answer"], item)             # 1.0: the reference solution passes every test
    task = CodeTask("my_problems.jsonl")         # your own rows, same format

A row is `{"question", "entry_point", "tests", "answer"}`: the problem statement (it names the
function and asks for a ```python block), the function's name, 3-6 lines `assert f(...) == ...`,
and a reference solution. `entry_point` and `tests` travel in the item's metadata, so a reward
can rebuild the item from dataset columns. Splits, eval de-duplication and train wrap-around are
those of `JsonlTask`.

How an answer is scored: one `workbench.sandbox.run` of a small harness that executes the code in
a fresh module, then each test in its own try/except with its own time limit, and prints one line
`<nonce> <passed> <total>`. The nonce is random per call and reaches the harness on stdin, which
it reads and closes before the code runs, so a solution that prints a made-up result line (or
reads the harness's source) cannot know it. The score is passed / total; code that exits early,
crashes at import, times out, is killed or prints no such line scores 0.

Two reward hacks are closed on purpose:
- Objects that compare equal to anything (`__eq__` returning True): every call in a test has its
  result checked to be plain data (None, bool, int, float, complex, str, bytes, range and lists,
  tuples, dicts, sets of those) before the test compares it, and the tests see the builtins as
  they were before the code ran, so a patched `abs` or `sorted` does not reach them.
- `sys.exit(0)` / `os._exit(0)` before the tests: no result line, score 0.
Not closed: the code runs in the same process as the harness, so code written to dig through the
interpreter (gc, frames) for the nonce could still forge a result. The sandbox bounds what such
code can do; it does not make the score unforgeable.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.tasks.jsonl import JsonlTask

DATA_DIR = Path(__file__).parent / "data"
CODE_TASKS = {"python_functions": DATA_DIR / "python_functions.jsonl"}
_CHECK = "__workbench_check__"  # the name the tests call to vet a value; no solution uses it

# The program run in the sandbox, followed by one line that calls it with repr()s of its inputs.
# Every builtin it relies on is bound before the model's code runs: that code may rebind them.
_HARNESS = r'''
def _workbench_main(source, tests, per_test_s, check_name):
    import builtins, os, signal, sys, types
    write, exit_now, compile_, exec_, id_, type_ = os.write, os._exit, compile, exec, id, type
    Exception_, TypeError_, setitimer, ITIMER_REAL = Exception, TypeError, signal.setitimer, signal.ITIMER_REAL
    pristine = dict(vars(builtins))
    # Identities, not `in (int, str, ...)`: a metaclass can make a class compare equal to int.
    scalars = {id_(t) for t in (type_(None), bool, int, float, complex, str, bytes, range)}
    sequences = {id_(t) for t in (list, tuple, set, frozenset)}

    def check(value):
        stack, seen = [value], set()
        while stack:
            v = stack.pop()
            t = id_(type_(v))
            if t in scalars:
                continue
            if id_(v) in seen:
                continue
            seen.add(id_(v))
            if t in sequences:
                stack.extend(v)
            elif t == id_(dict):
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                raise TypeError_("a test call returned a %s, not plain data" % type_(v).__name__)
        return value

    def reporter(nonce):
        def report(passed, total):
            # Straight to fd 1, then out: no buffered print of the code's and no atexit hook of
            # its can come after (or through) this line.
            write(1, ("\n%s %d %d\n" % (nonce, passed, total)).encode())
            exit_now(0)
        return report

    # The nonce comes on stdin; fd 0 is a seekable file, so it is closed for the code's sake.
    report = reporter(sys.stdin.readline().strip())
    os.close(0)
    os.open(os.devnull, os.O_RDONLY)  # fd 0 again: input() now meets EOF, not a closed descriptor
    sys.stdin = open(0, closefd=False)

    class TestTimeout(BaseException):  # BaseException: `except Exception` in the code cannot eat it
        pass

    def on_alarm(signum, frame):
        raise TestTimeout()

    module = types.ModuleType("solution")  # not __main__: the code's `if __name__ == ...` demo stays off
    sys.modules["solution"] = module
    exec_(compile_(source, "solution.py", "exec"), module.__dict__)

    signal.signal(signal.SIGALRM, on_alarm)
    passed = 0
    for i, test in enumerate(tests):
        scope = dict(module.__dict__)
        scope["__builtins__"], scope[check_name] = dict(pristine), check
        ok = False
        try:
            try:
                setitimer(ITIMER_REAL, per_test_s)
                exec_(compile_(test, "test_%d" % i, "exec"), scope)
                ok = True
            finally:
                setitimer(ITIMER_REAL, 0)
        except (Exception_, TestTimeout):
            pass
        passed += ok
    report(passed, len(tests))
'''


class _CheckCalls(ast.NodeTransformer):
    """Wrap every call `f(x)` in a test as `__workbench_check__(f(x))`."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        return ast.Call(func=ast.Name(id=_CHECK, ctx=ast.Load()), args=[node], keywords=[])


def harden_test(test: str) -> str:
    """`test` with each call's result checked to be plain data (see the module docstring)."""
    tree = _CheckCalls().visit(ast.parse(test))
    return ast.unparse(ast.fix_missing_locations(tree))


def _result_line(stdout: str, nonce: str) -> tuple[int, int] | None:
    found = re.findall(rf"^{nonce} (\d+) (\d+)$", stdout, re.MULTILINE)
    return (int(found[0][0]), int(found[0][1])) if len(found) == 1 else None


def run_tests(code: str, tests: list[str], timeout_s: float = 3.0, memory_mb: int = 256) -> float:
    """Share of `tests` that `code` passes, from one sandbox run (0.0 if no valid result line)."""
    from workbench.sandbox import run

    hardened = [harden_test(t) for t in tests]
    # The sandbox's wall clock covers interpreter start and the code's own import as well, so
    # each test gets a share of it: one runaway test fails alone instead of the whole run.
    per_test_s = max(0.05, timeout_s / (len(tests) + 1))
    program = _HARNESS + f"\n_workbench_main({code!r}, {hardened!r}, {per_test_s!r}, {_CHECK!r})\n"
    nonce = secrets.token_hex(16)
    result = run(program, timeout_s=timeout_s, memory_mb=memory_mb, stdin=nonce + "\n")
    if result.status != "finished" or result.exit_code != 0:
        return 0.0
    counts = _result_line(result.stdout, nonce)
    if counts is None or counts[1] != len(tests) or not 0 <= counts[0] <= counts[1]:
        return 0.0
    return counts[0] / counts[1]


def _check_row(path: Path, row: dict) -> None:
    meta = row["metadata"]
    where = f"{path}: problem {meta.get('entry_point') or row['question'][:40]!r}"
    entry_point, tests = meta.get("entry_point"), meta.get("tests")
    if not isinstance(entry_point, str) or not entry_point.isidentifier():
        raise WorkbenchError(f"{where}: 'entry_point' must be the function's name, got {entry_point!r}")
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        raise WorkbenchError(f"{where}: 'tests' must be a non-empty list of strings like 'assert f(1) == 2'")
    for test in tests:
        try:
            ast.parse(test)
        except SyntaxError as e:
            raise WorkbenchError(f"{where}: test {test!r} is not valid Python ({e.msg})") from e
        if entry_point not in test:
            raise WorkbenchError(f"{where}: test {test!r} does not call {entry_point}")


class CodeTask(JsonlTask):
    """Function-writing problems from a JSONL file; an answer is correct when it passes every test
    (``score``); ``credit`` is the share of tests it passes (the ``code`` reward).

    `timeout_s` is the wall-clock limit of one answer's whole run (all its tests), `memory_mb`
    its address-space limit; both are passed to `workbench.sandbox.run`.
    """

    def __init__(
        self,
        path: str | Path = CODE_TASKS["python_functions"],
        seed: int = 0,
        *,
        name: str | None = None,
        description: str | None = None,
        heldout_fraction: float = 0.2,
        timeout_s: float = 3.0,
        memory_mb: int = 256,
    ):
        if not timeout_s > 0:
            raise WorkbenchError(f"timeout_s must be > 0, got {timeout_s!r}")
        if memory_mb < 32:  # the sandbox's own floor, checked here so a bad value fails now, not as 0s
            raise WorkbenchError(f"memory_mb must be >= 32 (the interpreter alone needs ~20), got {memory_mb!r}")
        super().__init__(path, seed, name=name, description=description, answer_kind="code",
                         heldout_fraction=heldout_fraction)
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        for rows in self._splits.values():
            for row in rows:
                _check_row(self.path, row)

    checker = "every unit test passes in the sandbox (credit: the share that pass)"

    def same_answer(self, a, b, item) -> bool:
        return a is not None and a == b

    def _verify(self, answer: str, item: dict) -> float:
        meta = item.get("metadata") or {}
        if isinstance(meta, str):
            meta = json.loads(meta)
        tests = meta.get("tests")
        if not tests:
            raise WorkbenchError(f"item {item.get('id', item.get('question', '')[:40])!r} has no 'tests' in its metadata")
        return run_tests(answer, list(tests), timeout_s=self.timeout_s, memory_mb=self.memory_mb)
