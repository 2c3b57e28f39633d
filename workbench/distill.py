"""Distillation, as R1 did it, against RL on the same student for the same training time.

    workbench distill --teacher_run runs/r1_demo-5-final_rl [--student smollm2-135m-instruct] [--k 4]

    from workbench.distill import distill_recipe
    from workbench.pipeline import run_pipeline
    result = run_pipeline(distill_recipe(teacher="...", teacher_adapter="...", student="smollm2-135m-instruct"))

Three stages, each its own run directory (workbench.pipeline):

1. ``teacher_samples``: rejection sampling from the teacher (a larger model, or a trained
   adapter) on the task's training questions: verified, readable answers only (workbench.sampling).
2. ``distill_sft``: SFT of the student (a smaller model, or the untrained base) on them.
3. ``student_grpo``: GRPO on the same student from the same start, stopped after the training
   time stage 2 took (``budget_from``), so both students get the same compute.

The teacher's sampling cost is not charged to the student: a distillation dataset is made once
and reused, as R1's 800k samples were. Both students are evaluated greedily on the same held-out
questions, before (the shared start) and after.
"""

from __future__ import annotations

from workbench.pipeline import Recipe, load_recipe


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


def main(argv: list[str] | None = None) -> int:
    """``workbench distill``: teacher -> student SFT, against GRPO on the student for the same time."""
    import argparse

    from workbench.errors import WorkbenchError
    from workbench.models import EMBEDDED_MODEL
    from workbench.pipeline import run_pipeline
    from workbench.runlog import Run

    p = argparse.ArgumentParser(prog="workbench distill", description=main.__doc__)
    p.add_argument("--teacher_run",
                   help="a run directory: its model + adapter are the teacher, its task and template the default")
    p.add_argument("--teacher", help="the teacher model (name or path), if not --teacher_run")
    p.add_argument("--teacher_adapter", help="a LoRA adapter on the teacher")
    p.add_argument("--student", default=EMBEDDED_MODEL, help=f"the student model (default {EMBEDDED_MODEL})")
    p.add_argument("--task")
    p.add_argument("--template")
    p.add_argument("--n_questions", type=int, default=96, help="training questions the teacher answers")
    p.add_argument("--k", type=int, default=4, help="teacher samples per question")
    p.add_argument("--max_new_tokens", type=int, default=128)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--eval_items", type=int, default=96)
    p.add_argument("--grpo_batch_size", type=int, help="completions per step of the student's GRPO (default 32)")
    p.add_argument("--runs_root", default="runs")
    p.add_argument("--name", default="distill")
    a = p.parse_args(argv)
    cfg = {}
    if a.teacher_run:
        run = Run(a.teacher_run)
        cfg = run.config()
        teacher = cfg.get("model")
        adapter = a.teacher_adapter or (str(run.adapter_dir) if run.adapter_dir.is_dir() else None)
    elif a.teacher:
        teacher, adapter = a.teacher, a.teacher_adapter
    else:
        raise WorkbenchError("give the teacher: --teacher_run DIR, or --teacher MODEL [--teacher_adapter DIR]")
    recipe = distill_recipe(teacher=teacher, teacher_adapter=adapter, student=a.student,
                            task=a.task or cfg.get("task") or "chain_sum",
                            task_kwargs=None if a.task else cfg.get("task_kwargs"),
                            template=a.template or cfg.get("template") or "chat_think", n_questions=a.n_questions,
                            k=a.k, max_new_tokens=a.max_new_tokens, epochs=a.epochs, eval_items=a.eval_items,
                            runs_root=a.runs_root, name=a.name,
                            grpo={"per_device_train_batch_size": a.grpo_batch_size} if a.grpo_batch_size else None)
    result = run_pipeline(recipe)
    print("\n" + result.table())
    sft_stage, grpo_stage = result.stages[1], result.stages[2]
    print(f"same student, same start, same training time ({sft_stage.train_seconds:.0f} s vs "
          f"{grpo_stage.train_seconds:.0f} s): distillation {_acc(sft_stage.after)} vs GRPO {_acc(grpo_stage.after)}")
    return 0


def _acc(r: dict | None) -> str:
    return f"{100 * r['accuracy']:.1f}% +- {100 * r['stderr']:.1f}" if r else "n/a"
