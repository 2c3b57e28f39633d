"""The verbs that train: ``workbench train``, ``demo``, ``sft``, ``pipeline`` and ``distill``.

Each parses its arguments, calls the library (imported when the verb runs, so ``workbench --help``
stays fast) and prints what the library returned.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path


def print_result(result) -> None:
    """Print a trained stage's run directory, held-out accuracy before/after with the paired gain, and wall time."""
    from workbench.analysis.evaluate import paired_difference

    print(f"\nrun directory: {result.run_dir}")
    if result.before and result.after:
        b, a = result.before, result.after
        d = paired_difference(b, a)
        print(f"held-out accuracy (greedy, {b['n']} items never seen in training):")
        print(f"  step 0 : {100 * b['accuracy']:.1f}% +- {100 * b['stderr']:.1f}")
        print(f"  after  : {100 * a['accuracy']:.1f}% +- {100 * a['stderr']:.1f}")
        print(f"  gain   : {100 * d['gain']:+.1f} points +- {100 * d['stderr']:.1f} (paired standard error)")
    print(f"wall time: {result.seconds / 60:.1f} min")
    if result.cost:
        from workbench.cost import describe

        print(f"cost: {describe(result.cost)}")


def finish_line(result, verb: str) -> int:
    """Print the result; the exit status: 0, or 130 (as after SIGINT) for an interrupted run, with the
    one line that says how to resume it."""
    print_result(result)
    if result.status == "interrupted":
        print(f"interrupted at step {result.steps} (checkpoint saved); resume with: "
              f"workbench {verb} --resume {result.run_dir}")
        return 130
    return 0


def resume_argv(argv: list[str], stage: str) -> list[str]:
    """``--resume RUN_DIR`` turned into the run's own config plus the other flags: ``--config
    RUN_DIR/config.yaml ... --runs_root PARENT --run_name NAME --resume true``. Raises WorkbenchError
    for a directory that is not a run of this stage."""
    from pathlib import Path

    import yaml

    from workbench.errors import WorkbenchError

    if "--resume" not in argv:
        return argv
    i = argv.index("--resume")
    if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
        raise WorkbenchError("--resume needs the run directory to continue, e.g. --resume runs/demo")
    run_dir, rest = Path(argv[i + 1]), argv[:i] + argv[i + 2:]
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise WorkbenchError(f"--resume {str(run_dir)!r}: not a run directory (no config.yaml)")
    recorded = (yaml.safe_load(config.read_text()) or {}).get("stage", "grpo")
    if recorded != stage:
        raise WorkbenchError(f"--resume {str(run_dir)!r}: a {recorded} run; resume it with the verb that made it")
    if "--config" in rest:
        raise WorkbenchError("--resume uses the run's own config.yaml; give other settings as --key value")
    import tempfile

    # The run's config without the stage key, which parse_cli does not know; outside the run directory.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="workbench-resume-", delete=False) as tmp:
        tmp.write(yaml.safe_dump({k: v for k, v in yaml.safe_load(config.read_text()).items() if k != "stage"}))
    return ["--config", tmp.name, *rest, "--runs_root", str(run_dir.resolve().parent), "--run_name", run_dir.resolve().name,
            "--resume", "true"]

def pop_app_flags(argv: list[str]) -> tuple[list[str], bool, int | None]:
    """Remove the demo's own flags (--no_app, --app_port N) before the config parser sees argv."""
    rest, app, port = [], True, None
    it = iter(argv)
    for arg in it:
        if arg == "--no_app":
            app = False
        elif arg == "--app_port" or arg.startswith("--app_port="):
            value = arg.partition("=")[2] if "=" in arg else next(it, "")
            if not value.isdigit():
                from workbench.errors import WorkbenchError

                raise WorkbenchError(f"--app_port needs a port number, got {value!r}")
            port = int(value)
        else:
            rest.append(arg)
    return rest, app, port

def cmd_train(argv: list[str]) -> int:
    """``workbench train --config X.yaml [--key value ...]``: one GRPO run; ``--resume RUN_DIR``
    continues a killed or interrupted one from its last checkpoint."""
    from workbench.config import parse_cli
    from workbench.grpo.trainer import train

    return run_stage(parse_cli(resume_argv(argv, "grpo")), train, "train")


def run_stage(cfg, fn, verb: str) -> int:
    """Run one stage; a second Ctrl-C (the step abandoned) still ends in one line and exit status 130."""
    from workbench import distributed
    from workbench.lifecycle import default_run_name

    # Under N processes (accelerate launch, torchrun) the main process names the run and prints.
    cfg.run_name = cfg.run_name or distributed.agree(lambda: default_run_name(cfg))
    try:
        if not distributed.is_main_process():
            result = fn(cfg, progress=False)
            return 130 if result.status == "interrupted" else 0
        return finish_line(fn(cfg), verb)
    except KeyboardInterrupt:
        print(f"\ninterrupted (the step abandoned; the last checkpoint stands); resume with: "
              f"workbench {verb} --resume {cfg.runs_root}/{cfg.run_name}", file=sys.stderr)
        return 130

def cmd_demo(argv: list[str]) -> int:
    """``workbench demo``: GRPO on the embedded model, watched live in the app unless --no_app."""
    # The demo is the config defaults (configs/demo.yaml spells them out); flags still override.
    from workbench.config import parse_cli
    from workbench.grpo.trainer import train
    from workbench.lifecycle import default_run_name

    argv, app, app_port = pop_app_flags(argv)
    cfg = parse_cli(argv)
    cfg.run_name = cfg.run_name or default_run_name(cfg)
    print(f"workbench demo: GRPO on {cfg.model}, task {cfg.task}, {cfg.max_steps} steps of "
          f"{cfg.prompts_per_step} prompts x {cfg.num_generations} rollouts")
    url = None
    if app:
        try:
            from apps.app import launch

            url = launch(cfg.runs_root, port=app_port, block=False, run=cfg.run_name)
            print(f"watch it train: {url} (--no_app turns it off)", flush=True)
        except Exception as e:  # the demo is the job; the app is a view on it
            print(f"app not started ({type(e).__name__}: {e}); training goes on", file=sys.stderr)
    print_result(train(cfg))
    if url and sys.stdin.isatty():  # a person at a terminal: keep the app up to look at the finished run
        print(f"\nthe app is still serving the finished run at {url}; Ctrl-C to quit "
              f"(later: workbench app --runs {cfg.runs_root})", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0

def cmd_sft(argv: list[str]) -> int:
    """``workbench sft --config X.yaml [--key value ...]``: one SFT stage."""
    from workbench.config import SFTStageConfig, parse_cli
    from workbench.stages.sft import sft

    return run_stage(parse_cli(resume_argv(argv, "sft"), SFTStageConfig), sft, "sft")


def cmd_pipeline(argv: list[str]) -> int:
    """``workbench pipeline --config RECIPE.yaml``: run a multi-stage recipe."""
    import argparse

    from workbench.stages.pipeline import load_recipe, run_pipeline, smoke_recipe

    p = argparse.ArgumentParser(prog="workbench pipeline", description=cmd_pipeline.__doc__)
    p.add_argument("--config", required=True, help="a recipe, e.g. configs/r1_pipeline_demo.yaml")
    p.add_argument("--name", help="the pipeline's name (prefix of its stages' run directories)")
    p.add_argument("--runs_root", help="where the stages' run directories go (default: the recipe's, else runs)")
    p.add_argument("--model", help="the base model every stage starts from (default: the recipe's)")
    p.add_argument("--smoke", action="store_true", help="every stage shrunk to seconds on the tiny random model")
    p.add_argument("--resume", action="store_true",
                   help="skip stages that finished, continue the interrupted one from its last checkpoint")
    a = p.parse_args(argv)
    overrides = {k: v for k, v in (("runs_root", a.runs_root), ("model", a.model)) if v}
    recipe = load_recipe(a.config, **overrides)
    if a.smoke:
        recipe = smoke_recipe(recipe)
    if a.name:
        recipe.name = a.name
    result = run_pipeline(recipe, resume=a.resume)
    print("\n" + result.table())
    print(f"summary: {Path(recipe.defaults.get('runs_root') or 'runs') / (recipe.name + '.pipeline.json')}")
    return 0


def cmd_distill(argv: list[str]) -> int:
    """``workbench distill``: teacher -> student SFT, against GRPO on the student for the same time."""
    import argparse

    from workbench.errors import WorkbenchError
    from workbench.models import EMBEDDED_MODEL
    from workbench.stages.distill import distill_recipe
    from workbench.stages.pipeline import run_pipeline
    from workbench.runlog import Run

    p = argparse.ArgumentParser(prog="workbench distill", description=cmd_distill.__doc__)
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
    result = run_pipeline(recipe, resume=a.resume)
    print("\n" + result.table())
    sft_stage, grpo_stage = result.stages[1], result.stages[2]
    print(f"same student, same start, same training time ({sft_stage.train_seconds:.0f} s vs "
          f"{grpo_stage.train_seconds:.0f} s): distillation {accuracy_text(sft_stage.after)} vs GRPO {accuracy_text(grpo_stage.after)}")
    return 0


def accuracy_text(r: dict | None) -> str:
    """``"71.4% +- 6.1"`` for an evaluation result, ``"n/a"`` for none."""
    return f"{100 * r['accuracy']:.1f}% +- {100 * r['stderr']:.1f}" if r else "n/a"
