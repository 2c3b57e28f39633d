"""`CodeExecutionReward`: run each completion's code against the item's unit tests.

    from workbench.tasks import get_task
    reward = CodeExecutionReward(get_task("python_functions"))
    item = reward.task.item("train", 0)
    reward(["<answer>```python\\n" + item["answer"] + "```</answer>"], answer=[item["answer"]],
           metadata=[json.dumps(item["metadata"])], question=[item["question"]])   # [1.0]

The reward of a completion is the share of the item's tests that the code of its last fenced
block passes (`extract_code`; inside <answer> if there is one); no code block scores 0.0. The
columns are those AccuracyReward reads: `answer`, `metadata` (JSON string: the tests and entry
point travel there) and `question`. Each completion runs in its own sandbox process, so a batch
runs them on a thread pool of os.cpu_count() workers: threads suffice because they only wait.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

from workbench.errors import WorkbenchError
from workbench.rewards.extract import completion_text, extract_code
from workbench.rewards.rules import per_sample


class CodeExecutionReward:
    """Share of the item's unit tests passed by the completion's code (``task.credit``), in [0, 1]."""

    __name__ = "code"

    def __init__(self, task):
        if getattr(task, "answer_kind", None) != "code":
            from workbench.tasks.code import CODE_TASKS

            raise WorkbenchError(
                f"reward 'code' needs a code task (answer_kind 'code'): {', '.join(CODE_TASKS)} or a "
                f"workbench.tasks.code.CodeTask over your own JSONL; got task {getattr(task, 'name', task)!r} "
                f"(answer_kind {getattr(task, 'answer_kind', None)!r})"
            )
        self.task = task

    def __call__(self, completions, answer=None, metadata=None, question=None, **kwargs):
        n = len(completions)
        answers = per_sample(answer, n, "answer")
        metadatas = per_sample(metadata, n, "metadata")
        questions = [""] * n if question is None else per_sample(question, n, "question")
        items = []
        for gold, meta, q in zip(answers, metadatas, questions):
            if isinstance(meta, str):
                meta = json.loads(meta) if meta else {}
            if not (meta or {}).get("tests"):
                # Without tests every answer would score 0 and training would look merely hard.
                raise ValueError(f"metadata of question {str(q)[:60]!r} has no 'tests': not a code task's item")
            items.append({"question": q, "answer": gold, "metadata": meta})
        codes = [extract_code(completion_text(c)) for c in completions]
        rewards = [0.0] * n
        todo = [i for i, code in enumerate(codes) if code and code.strip()]
        if todo:
            with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, len(todo))) as pool:
                scores = pool.map(lambda i: self.task.credit(codes[i], items[i]), todo)
                for i, score in zip(todo, scores):
                    rewards[i] = score
        return rewards
