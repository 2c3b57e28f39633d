"""A task read from a JSONL file of `{"question": ..., "answer": ...}` rows.

Extra keys in a row are kept in the item's metadata. Rows go to the eval split by the same
question-hash rule as every other task and keep file order within each split. The train split
wraps around (`item("train", len + 3)` is row 3 again: GRPO may need more steps than the file has
rows); the eval split does not (IndexError past its end). Identical eval questions are dropped
after their first row so that eval items are distinct questions. `seed` does not change a file
task's items; it is kept for a uniform signature.

Checking (``checker``): each gold answer gets its kind from its own text
(``workbench.rewards.answers.kind_of``: "1,250" is a number, "0,1" and "-3, 4" are lists, "B" a
choice letter, "\\frac{63}{400}" an expression, anything else text) and the answer is compared
with it by ``answers_equal`` for that kind (numbers by value, lists and expressions by math-verify
with both sides parsed, letters as letters, text after casefolding). A row may declare its own
``"answer_kind"`` (number, expression, list, choice, text) and ``"ordered": true`` for a list
whose order matters ("(2, 3)" is then not "(3, 2)"). The task's ``answer_kind`` (what extraction
falls back on without an answer tag) is "number" when every gold is a number.

    task = JsonlTask("data/my_questions.jsonl")
"""

from __future__ import annotations

import json
from pathlib import Path

from workbench.rewards.answers import answers_equal, kind_of
from workbench.tasks.base import ANSWER_KINDS, Task, json_safe
from workbench.errors import WorkbenchError

def iter_jsonl(path: str | Path):
    """(1-based line number, parsed value, None) per non-blank line of a JSONL file, or
    (line number, None, "malformed JSON (...)") for a line that does not parse; the caller decides
    whether a bad line stops the read (tasks) or is collected with the others (SFT data)."""
    try:
        f = open(path, "rb")  # bytes, decoded line by line: a bad byte is named with its line
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WorkbenchError(f"{path}: a directory, not a JSONL file") from None
    with f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise WorkbenchError(f"{path}:{lineno}: not UTF-8 text (byte {raw[e.start]:#04x}); "
                                     "save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line), None
            except json.JSONDecodeError as e:
                yield lineno, None, f"malformed JSON ({e.msg})"


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSONL file; errors name the file, the 1-based line and what is wrong."""
    rows = []
    for lineno, row, error in iter_jsonl(path):
        if error:
            raise WorkbenchError(f"{path}:{lineno}: {error}")
        if not isinstance(row, dict):
            raise WorkbenchError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        for key in ("question", "answer"):
            if row.get(key) is None:
                raise WorkbenchError(f"{path}:{lineno}: row is missing the {key!r} key")
        rows.append(row)
    return rows


class JsonlTask(Task):
    """Questions and gold answers from a JSONL file, scored by math-verify or exact text."""

    def __init__(
        self,
        path: str | Path,
        seed: int = 0,
        *,
        name: str | None = None,
        description: str | None = None,
        answer_kind: str | None = None,
        heldout_fraction: float = 0.2,
    ):
        if not 0.0 <= heldout_fraction <= 1.0:
            raise WorkbenchError(f"heldout_fraction must be in [0, 1], got {heldout_fraction}")
        self.path = Path(path)
        self.seed = int(seed)
        self.heldout_fraction = float(heldout_fraction)
        self.name = name or self.path.stem
        self.description = description or f"questions from {self.path}"
        rows = read_rows(self.path)
        if not rows:
            raise WorkbenchError(f"{self.path}: no rows")
        self._splits: dict[str, list[dict]] = {"train": [], "eval": []}
        seen_eval: set[str] = set()
        for row in rows:
            question = str(row["question"])
            split = "eval" if self.is_heldout(question) else "train"
            if split == "eval":
                if question in seen_eval:
                    continue
                seen_eval.add(question)
            metadata = json_safe({k: v for k, v in row.items() if k not in ("question", "answer")})
            self._splits[split].append({"question": question, "answer": str(row["answer"]), "metadata": metadata})
        if answer_kind is None:
            # Numeric gold answers let extraction fall back on "the last number in the text".
            numeric = all(kind_of(str(r["answer"])) == "number" for r in rows)
            answer_kind = "number" if numeric else "text"
        if answer_kind not in ANSWER_KINDS:
            raise WorkbenchError(f"answer_kind must be one of {', '.join(ANSWER_KINDS)}, got {answer_kind!r}")
        self.answer_kind = answer_kind

    def split_size(self, split: str) -> int:
        return len(self._splits[split])

    def item(self, split: str, index: int) -> dict:
        if split not in self._splits:
            raise WorkbenchError(f"unknown split {split!r}; valid splits: train, eval")
        rows = self._splits[split]
        if index < 0:
            raise IndexError(f"negative item index {index}")
        if split == "train":
            if not rows:
                raise WorkbenchError(
                    f"{self.path}: every question falls in the eval split (heldout_fraction={self.heldout_fraction})"
                )
            row = rows[index % len(rows)]
        elif index >= len(rows):
            raise IndexError(f"{self.path}: eval split has {len(rows)} items, asked for item {index}")
        else:
            row = rows[index]
        return {
            "id": f"{self.name}/{split}/{index}",
            "question": row["question"],
            "answer": row["answer"],
            "metadata": json.loads(json.dumps(row["metadata"])),
        }

    checker = "per gold answer: its kind (number, list, choice, expression, text) and answers_equal for it"

    def _kind(self, item: dict) -> tuple[str, bool]:
        """(answer kind, ordered) of an item: the row's own "answer_kind" if it gives one, else the
        gold's ``kind_of``; "ordered": true makes a list compare item by item."""
        meta = item.get("metadata") or {}
        kind = meta.get("answer_kind") if meta.get("answer_kind") in ANSWER_KINDS else kind_of(str(item["answer"]))
        return kind, bool(meta.get("ordered"))

    def _verify(self, answer: str, item: dict) -> float:
        kind, ordered = self._kind(item)
        return 1.0 if answers_equal(str(item["answer"]), answer, kind, ordered) else 0.0

    def same_answer(self, a: str | None, b: str | None, item: dict) -> bool:
        if a is None or b is None:
            return False
        kind, ordered = self._kind(item)
        return answers_equal(a, b, kind, ordered)
