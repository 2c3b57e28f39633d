"""Adapter from any reasoning-gym dataset to a workbench `Task`.

reasoning-gym items are pure functions of `(seed, index)` (each `__getitem__` seeds
`Random(seed + idx)`), so a dataset object is only a view with a `size`; we keep one per split and
enlarge it when a walk runs past its end.

Checking (``checker``): a task of answer kind "number" is correct when the answer's value equals
the gold's (``workbench.rewards.answers``: 2 is not -2, 1,250 is 1250), or, for a dataset with its
own `score_answer` (decimal_arithmetic's rounding tolerance), when that gives full marks to a
number of the gold's sign. reasoning-gym's own
`score_answer` is not exact for numbers: it gives substring credit (0.5 for "-2" against 2) and
gsm_symbolic's reads the first number without its sign (1.0 for "-44" against 44). Other kinds
use `score_answer` at full marks only (countdown evaluates the expression and checks the numbers
used). `score_answer`'s graded value stays available as ``credit`` (the ``partial_credit`` reward,
off by default).

    task = GymTask("leg_counting", seed=0, min_animals=2, max_animals=3)
    task.item("train", 0)["question"]
"""

from __future__ import annotations

import dataclasses
import re

from workbench.tasks.base import ANSWER_KINDS, ProceduralTask
from workbench.errors import WorkbenchError

# Fields of a reasoning-gym config that the workbench sets itself.
_RESERVED_FIELDS = ("seed", "size")
_INITIAL_SIZE = 1024
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def gym_dataset_names() -> list[str]:
    """Names of every dataset reasoning-gym registers (imports reasoning-gym, ~0.5 s)."""
    import reasoning_gym  # noqa: F401  (importing registers the datasets)
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def _config_class(dataset: str):
    import reasoning_gym  # noqa: F401
    from reasoning_gym.factory import DATASETS

    if dataset not in DATASETS:
        raise WorkbenchError(f"{dataset!r} is not a reasoning-gym dataset")
    return DATASETS[dataset][1]


class GymTask(ProceduralTask):
    """A reasoning-gym dataset as a Task; `config` goes to the dataset's config dataclass."""

    def __init__(
        self,
        dataset: str,
        seed: int = 0,
        *,
        name: str | None = None,
        description: str | None = None,
        answer_kind: str | None = None,
        heldout_fraction: float = 0.2,
        **config,
    ):
        super().__init__(seed=seed, heldout_fraction=heldout_fraction)
        self.dataset_name = dataset
        self.name = name or dataset
        self.config = dict(config)
        self._check_config()
        self._datasets: dict[int, object] = {}
        # Build the train view now so that bad options fail here, not on first use.
        self._dataset(self.split_seed("train"), 0)
        if answer_kind is None:
            answer_kind = self._infer_answer_kind()
        if answer_kind not in ANSWER_KINDS:
            raise WorkbenchError(f"answer_kind must be one of {', '.join(ANSWER_KINDS)}, got {answer_kind!r}")
        self.answer_kind = answer_kind
        self.checker = ("numeric equality of answer and gold (workbench.rewards.answers)" if answer_kind == "number"
                        else f"reasoning-gym {dataset} score_answer, full marks only")
        opts = ", ".join(f"{k}={v}" for k, v in sorted(self.config.items()))
        self.description = description or f"reasoning-gym {dataset}" + (f" ({opts})" if opts else "")

    def _check_config(self) -> None:
        config_cls = _config_class(self.dataset_name)
        valid = [f.name for f in dataclasses.fields(config_cls) if f.name not in _RESERVED_FIELDS]
        reserved = sorted(set(self.config) & set(_RESERVED_FIELDS))
        if reserved:
            raise WorkbenchError(
                f"reasoning-gym dataset {self.dataset_name!r}: option(s) {reserved} are set by the workbench "
                "(pass seed to get_task; sizes grow on demand)"
            )
        unknown = sorted(set(self.config) - set(valid))
        if unknown:
            raise WorkbenchError(
                f"reasoning-gym dataset {self.dataset_name!r} has no option(s) {unknown}; "
                f"valid options: {', '.join(valid)}"
            )

    def _dataset(self, split_seed: int, index: int):
        """A dataset view for `split_seed` large enough to hold `index`."""
        ds = self._datasets.get(split_seed)
        if ds is not None and index < ds.size:
            return ds
        size = ds.size if ds is not None else _INITIAL_SIZE
        while size <= index:
            size *= 4
        import reasoning_gym

        try:
            ds = reasoning_gym.create_dataset(self.dataset_name, seed=split_seed, size=size, **self.config)
        except (AssertionError, TypeError, ValueError) as e:
            raise WorkbenchError(
                f"invalid options for reasoning-gym dataset {self.dataset_name!r} {self.config}: {e}"
            ) from e
        self._datasets[split_seed] = ds
        return ds

    def _generate(self, split_seed: int, index: int) -> dict:
        return self._dataset(split_seed, index)[index]

    def _infer_answer_kind(self) -> str:
        # Numeric gold answers let extraction fall back on "the last number in the text".
        seed = self.split_seed("train")
        answers = [str(self._generate(seed, i)["answer"]).strip() for i in range(20)]
        return "number" if all(_NUMBER.fullmatch(a) for a in answers) else "text"

    def _verify(self, answer: str, item: dict) -> float:
        entry = {"question": item["question"], "answer": item["answer"], "metadata": item.get("metadata") or {}}
        return self._dataset(self.split_seed("train"), 0).score_answer(answer, entry)

    def _correct(self, answer: str, item: dict) -> bool:
        if self.answer_kind == "number":
            from workbench.rewards.answers import parse_number

            gold, value = parse_number(item["answer"]), parse_number(answer)
            if gold is not None:
                if value is None:
                    return False
                if value == gold:
                    return True
                # A dataset with its own scorer may accept a rounding tolerance (decimal_arithmetic:
                # one unit in the last place); trusted only for a number of the gold's sign, since
                # gsm_symbolic's scorer reads "-44" as 44.
                return self._own_scorer() and (value > 0) == (gold > 0) and super()._correct(answer, item)
        return super()._correct(answer, item)

    def _own_scorer(self) -> bool:
        """Whether the dataset overrides reasoning-gym's base score_answer (substring credit)."""
        from reasoning_gym.dataset import ProceduralDataset

        ds = self._dataset(self.split_seed("train"), 0)
        return type(ds).score_answer is not ProceduralDataset.score_answer

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_datasets"] = {}
        return state
