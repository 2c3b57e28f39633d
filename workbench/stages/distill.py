"""Distillation, as R1 did it, against RL on the same student for the same training time.

    workbench distill --teacher_run runs/r1_demo-5-final_rl [--student smollm2-135m-instruct] [--k 4]

    from workbench.stages.distill import distill_recipe
    from workbench.stages.pipeline import run_pipeline
    result = run_pipeline(distill_recipe(teacher="...", teacher_adapter="...", student="smollm2-135m-instruct"))

Three stages, each its own run directory (workbench.stages.pipeline):

1. ``teacher_samples``: rejection sampling from the teacher (a larger model, or a trained
   adapter) on the task's training questions: verified, readable answers only (workbench.stages.rejection_sampling).
2. ``distill_sft``: SFT of the student (a smaller model, or the untrained base) on them.
3. ``student_grpo``: GRPO on the same student from the same start, stopped after the training
   time stage 2 took (``budget_from``), so both students get the same compute.

The teacher's sampling cost is not charged to the student: a distillation dataset is made once
and reused, as R1's 800k samples were. Both students are evaluated greedily on the same held-out
questions, before (the shared start) and after.
"""

from __future__ import annotations

from workbench.stages.pipeline import Recipe, load_recipe


def distill_recipe(*, teacher: str, student: str, teacher_adapter: str | None = None, task: str = "chain_sum",
                   template: str = "chat_think", n_questions: int = 96, k: int = 4, max_new_tokens: int = 128,
                   epochs: float = 2.0, rewards: dict | None = None, grpo: dict | None = None, seed: int = 0,
                   eval_items: int = 96, runs_root: str = "runs", name: str = "distill",
                   task_kwargs: dict | None = None) -> Recipe:
    think = template in ("chat_think", "r1_zero")
    rewards = rewards or ({"accuracy": 1.0, "format": 0.5} if think else {"accuracy": 1.0})
    defaults = {"model": student, "task": task, "task_kwargs": task_kwargs or {}, "template": template,
                "seed": seed, "runs_root": runs_root, "eval_items": eval_items, "eval_max_new_tokens": max_new_tokens}
    return load_recipe({"name": name, "defaults": defaults, "stages": [
        {"name": "teacher_samples", "kind": "sample", "model": teacher, "adapter": teacher_adapter,
         "n_questions": n_questions, "k": k, "max_new_tokens": max_new_tokens, "require_format": think},
        {"name": "distill_sft", "kind": "sft", "from": "base", "data": "stage:teacher_samples", "epochs": epochs},
        # max_steps is only a ceiling: the time budget ends this stage.
        {"name": "student_grpo", "kind": "grpo", "from": "base", "budget_from": "distill_sft", "rewards": rewards,
         "max_steps": 500, "max_completion_length": max_new_tokens, **(grpo or {})},
    ]})
