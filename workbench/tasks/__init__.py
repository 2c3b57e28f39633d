"""Task registry: a name, a reasoning-gym dataset name or a .jsonl path -> a `Task`.

    from workbench.tasks import get_task, list_tasks
    list_tasks()                                 # [(name, description), ...] registered tasks
    task = get_task("chain_sum", seed=0)         # a registered task (demo defaults)
    task = get_task("chain_sum", max_digits=3)   # ... with its reasoning-gym options overridden
    task = get_task("leg_counting")              # any reasoning-gym dataset, options passed through
    task = get_task("data/questions.jsonl")      # a JSONL file of {"question", "answer"} rows
    task = get_task("python_functions")          # write a function; scored by running its tests

`get_task` resolves a name in that order. Registered tasks are small, fast-to-learn defaults for
small models; every reasoning-gym option can still be overridden by keyword. reasoning-gym itself
is imported only when a task is built, so `import workbench.tasks` stays fast.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from workbench.tasks.base import PARTICIPATION_CREDIT, ProceduralTask, Task, is_heldout
from workbench.tasks.code import CodeTask
from workbench.tasks.gym import GymTask, gym_dataset_names
from workbench.tasks.jsonl import JsonlTask
from workbench.errors import WorkbenchError

__all__ = [
    "PARTICIPATION_CREDIT",
    "CodeTask",
    "GymTask",
    "JsonlTask",
    "ProceduralTask",
    "Task",
    "UnknownTaskError",
    "get_task",
    "is_heldout",
    "list_tasks",
    "register_task",
]


class UnknownTaskError(WorkbenchError):
    """A task name that is neither registered, a reasoning-gym dataset, nor a .jsonl path."""

    def __init__(self, name: str, registered: list[str], gym_names: list[str]):
        self.name = name
        hint = difflib.get_close_matches(name, registered + gym_names, n=3)
        super().__init__(
            f"unknown task {name!r}; valid choices: a registered task ({', '.join(registered)}), "
            f"any reasoning-gym dataset name ({len(gym_names)} available, e.g. leg_counting), "
            "or a path ending in .jsonl" + (f". Did you mean {', '.join(hint)}?" if hint else "")
        )


_REGISTRY: dict[str, tuple[Callable[..., Task], str]] = {}


def register_task(name: str, factory: Callable[..., Task], description: str) -> None:
    """Register `factory(seed=..., **kwargs) -> Task` under `name` (replaces an existing entry)."""
    _REGISTRY[name] = (factory, description)


def list_tasks() -> list[tuple[str, str]]:
    """(name, description) of every registered task, in registration order."""
    return [(name, description) for name, (_, description) in _REGISTRY.items()]


def get_task(name: str, seed: int = 0, **kwargs) -> Task:
    """Build a task by registered name, reasoning-gym dataset name, or .jsonl path."""
    if name in _REGISTRY:
        return _REGISTRY[name][0](seed=seed, **kwargs)
    if str(name).endswith(".jsonl"):
        return JsonlTask(name, seed=seed, **kwargs)
    gym_names = gym_dataset_names()
    if name in gym_names:
        return GymTask(name, seed=seed, **kwargs)
    raise UnknownTaskError(name, list(_REGISTRY), gym_names)


class _GymFactory:
    """`factory(seed, **overrides)` for a registered reasoning-gym task with default options."""

    def __init__(self, name: str, dataset: str, defaults: dict):
        self.name, self.dataset, self.defaults = name, dataset, defaults

    def __call__(self, seed: int = 0, **kwargs) -> GymTask:
        options = {**self.defaults, **kwargs}
        return GymTask(self.dataset, seed=seed, name=self.name, **options)


def _register_gym(name: str, dataset: str, description: str, **defaults) -> None:
    factory = _GymFactory(name, dataset, {"description": description, **defaults})
    register_task(name, factory, description)


_register_gym(
    "chain_sum",
    "chain_sum",
    "a + b or a - b with one-digit numbers (200 questions; half held out): the demo task",
    answer_kind="number",
    heldout_fraction=0.5,
    min_terms=2,
    max_terms=2,
    min_digits=1,
    max_digits=1,
)
_register_gym(
    "chain_sum_2digit",
    "chain_sum",
    "a + b or a - b with two-digit numbers",
    answer_kind="number",
    min_terms=2,
    max_terms=2,
    min_digits=2,
    max_digits=2,
)
_register_gym(
    "countdown",
    "countdown",
    "Countdown: combine 3 numbers (1-20) with + - * / to hit a target in 1-200; answer an expression",
    answer_kind="expression",
    # Targets from 1 rather than 10: reasoning-gym draws candidate expressions until one lands in
    # range, and the wider range halves that cost (~0.7 ms per item instead of ~1.2 ms).
    min_numbers=3,
    max_numbers=3,
    min_value=1,
    max_value=20,
    min_target=1,
    max_target=200,
)
_register_gym(
    "gsm_symbolic",
    "gsm_symbolic",
    "GSM8K-style word problems with fresh numbers (reasoning-gym gsm_symbolic)",
    answer_kind="number",
)
_register_gym(
    "basic_arithmetic",
    "basic_arithmetic",
    "2-4 term integer arithmetic with + - * / and brackets, 1-2 digit numbers",
    answer_kind="number",
    min_terms=2,
    max_terms=4,
    min_digits=1,
    max_digits=2,
)
register_task(
    "python_functions",
    CodeTask,
    "write a small Python function (80 string/list/number problems); the code reward = share of unit tests passed",
)


def _lab_task(world_name: str):
    def factory(seed: int = 0, **kwargs) -> Task:
        from workbench.lab.world import World

        return World(world_name).task(seed=seed, **kwargs)

    return factory


# The aha lab's worlds (workbench.lab.world); their models are lab:<world>-p<priming %>.
register_task("pairsum", _lab_task("pairsum"),
              "aha lab: pick the two of four numbers that sum to a target (checking is cheap, guessing is not)")
register_task("pairsum_blind", _lab_task("pairsum_blind"),
              "aha lab control: pairsum with the target hidden, so checking a sum gives no information")
register_task("slips", _lab_task("slips"),
              "aha lab: a+b whose first answers slip; a check (each digit against its column) catches the slip")
