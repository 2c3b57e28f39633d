"""The verbs that measure: ``workbench eval`` (R1's sampled protocol), ``workbench bench`` (step time
against TRL as it comes), ``workbench tasks`` (what can be trained on, and what counts as correct)
and ``workbench audit`` (a run re-scored with today's checkers, and its alarms)."""

from __future__ import annotations


def cmd_eval(argv: list[str]) -> int:
    """``workbench eval``: sampled evaluation (and optionally greedy accuracy) on a task's held-out split."""
    import argparse
    import json
    from pathlib import Path

    import torch

    from workbench import cost
    from workbench.analysis.evaluate import evaluate_accuracy, evaluate_sampled
    from workbench.models import EMBEDDED_MODEL, check_model_name, load_policy
    from workbench.runlog import POLICY, Run
    from workbench.tasks import get_task
    from workbench.templates import render_prompt, resolve_template, stop_strings

    p = argparse.ArgumentParser(prog="workbench eval", description=cmd_eval.__doc__)
    p.add_argument("--run", help="a run directory: its model, task, seed, template and trained adapter "
                                 "(or, for finetune: full, its trained policy/)")
    p.add_argument("--model", help=f"model name or path (default: the run's, else {EMBEDDED_MODEL})")
    p.add_argument("--adapter", help="a LoRA adapter directory to apply to the model")
    p.add_argument("--base", action="store_true", help="with --run: the run's model without its adapter (step 0)")
    p.add_argument("--task", help="task name (default: the run's, else chain_sum)")
    p.add_argument("--k", type=int, default=4, help="samples that pass@k and cons@k count")
    p.add_argument("--n", type=int, help="samples taken per question (default k; pass@k needs n >= k)")
    p.add_argument("--limit", type=int, default=64, help="held-out questions")
    p.add_argument("--max_new_tokens", type=int, help="default: the run's max_completion_length, else 256")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top_p", type=float, default=0.95)
    p.add_argument("--greedy", action="store_true", help="also report greedy accuracy")
    p.add_argument("--template", help="default: the run's, else auto")
    p.add_argument("--stop", help="where an answer ends besides EOS: auto (the template's end of turn), none, or "
                                  "strings separated by '|' (default: the run's, else auto)")
    p.add_argument("--seed", type=int, help="task seed (default: the run's, else 0)")
    p.add_argument("--output", help="write the results here as JSON (with --run: also eval_k<k>.json in it; "
                                    "eval_base_k<k>.json with --base)")
    a = p.parse_args(argv)

    cfg = Run(a.run).config() if a.run else {}
    model_name = a.model or cfg.get("model") or EMBEDDED_MODEL
    check_model_name(model_name)
    adapter = a.adapter or (str(Run(a.run).adapter_dir) if a.run and not a.base and Run(a.run).adapter_dir.is_dir()
                            else None)
    policy = Run(a.run).file(POLICY) if a.run and not a.base and not a.model else None
    if policy is not None and policy.is_dir():  # a full fine-tune (finetune: full) saved its whole policy
        model_name = str(policy)
    seed = a.seed if a.seed is not None else cfg.get("seed", 0)
    task_kwargs = {} if a.task else (cfg.get("task_kwargs") or {})  # a run's kwargs belong to the run's task
    task = get_task(a.task or cfg.get("task") or "chain_sum", seed=seed, **task_kwargs)
    max_new = a.max_new_tokens or cfg.get("max_completion_length") or 256
    torch.manual_seed(seed)
    model, tokenizer = load_policy(model_name, adapter, cfg.get("precision", "auto"), cfg.get("quantization", "auto"),
                                   seed)
    template = resolve_template(a.template or cfg.get("template") or "auto", tokenizer)
    items = task.items("eval", a.limit)
    prompts = [render_prompt(template, it["question"], tokenizer) for it in items]
    stop = stop_strings(template, tokenizer, a.stop or cfg.get("stop") or "auto")
    result = evaluate_sampled(model, tokenizer, task, items, prompts, a.k, a.n, max_new, a.temperature, a.top_p,
                              stop=stop)
    if a.greedy:
        greedy = evaluate_accuracy(model, tokenizer, task, items, prompts, max_new, stop=stop)
        result.update(greedy_accuracy=greedy["accuracy"], greedy_accuracy_stderr=greedy["stderr"])
    result.update(model=model_name, adapter=adapter, task=task.name, template=template, stop=list(stop))
    k = a.k
    print(f"\n{model_name}{' + ' + adapter if adapter else ''} on {task.name}: {result['questions']} held-out "
          f"questions, {result['n']} samples each (T={a.temperature}, top-p={a.top_p})")
    for name in ("pass@1", f"pass@{k}", f"cons@{k}", "format_valid") + (("greedy_accuracy",) if a.greedy else ()):
        print(f"  {name:16s} {100 * result[name]:5.1f}% +- {100 * result[name + '_stderr']:.1f}")
    print(f"  {'mean tokens':16s} {result['mean_tokens']:5.1f} +- {result['mean_tokens_stderr']:.1f}")
    if a.run:  # what training this policy cost (workbench.cost), beside what it scores
        run = Run(a.run)
        result["run_cost"] = cost.estimate(run.events(), run.metrics(), cfg, running=run.status() == "running")
        print(f"  {'training cost':16s} {cost.describe(result['run_cost']) or 'not recorded (a run from before costs)'}")
    targets = [Path(a.output)] if a.output else []
    if a.run:
        targets.append(Path(a.run) / (f"eval_base_k{k}.json" if a.base else f"eval_k{k}.json"))
    for path in targets:
        path.write_text(json.dumps(result, indent=1))
        print(f"wrote {path}")
    return 0


def cmd_bench(argv: list[str]) -> int:
    """``workbench bench``: TRL's GRPOTrainer as it comes vs the workbench's path, step time side by side."""
    import argparse
    import json
    import os

    import torch

    from workbench.grpo import bench
    from workbench.models import EMBEDDED_MODEL, resolve_precision

    p = argparse.ArgumentParser(prog="workbench bench", description=bench.__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3, help="measured steps per path and setting (after warm-up)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured steps per path first")
    p.add_argument("--settings", default="demo,long,wide", help=f"comma-separated, from {', '.join(bench.SETTINGS)}")
    p.add_argument("--model", default=EMBEDDED_MODEL, help="as in workbench train; random-0.5b for GPU timing")
    p.add_argument("--precision", default="auto")
    p.add_argument("--quantization", default="auto")
    p.add_argument("--task", default="chain_sum", help="task the prompts come from (as in workbench train)")
    p.add_argument("--fixed_length", action="store_true", help="force every rollout to max length (random models)")
    p.add_argument("--output", help="write the results as JSON here")
    p.add_argument("--paths", default=",".join(bench.PATHS),
                   help=f"comma-separated, from {', '.join(bench.PATHS)} (the workbench's always runs); fewer paths, "
                        "fewer models in memory")
    a = p.parse_args(argv)
    unknown = [s for s in a.settings.split(",") if s not in bench.SETTINGS]
    if unknown:
        p.error(f"unknown setting(s) {unknown}; valid choices: {', '.join(bench.SETTINGS)}")
    unknown = [s for s in a.paths.split(",") if s not in bench.PATHS]
    if unknown:
        p.error(f"unknown path(s) {unknown}; valid choices: {', '.join(bench.PATHS)}")
    precision = resolve_precision(a.precision, a.quantization)
    if precision.device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    # The rate is the best of trials before and after every setting (bench.MatmulRate), and the floors
    # are computed at the end from it.
    rate = bench.MatmulRate(precision.device, precision.torch_dtype)
    print(f"matmul rate ({precision.device}, {precision.dtype}): {rate.measure() / 1e9:.1f} GFLOP/s (first trial)")
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "gpu": torch.cuda.get_device_name() if precision.device == "cuda" else None}

    def save(results):
        if a.output:
            with open(a.output, "w") as f:
                json.dump({"bench.matmul_flops_per_s": rate.best, "matmul_trials": rate.trials,
                           "bench.read_bytes_per_s": rate.best_read, "read_trials": rate.read_trials, "machine": meta,
                           "settings": results}, f, indent=1)

    results = []
    for name in a.settings.split(","):
        print(f"setting {name} {bench.SETTINGS[name]}")
        results.append(bench.run_setting(name, bench.SETTINGS[name], a.model, precision, a.steps, a.warmup,
                                         a.fixed_length, a.task, paths=tuple(a.paths.split(","))))
        rate.measure()
        # Saved after every setting, floors at the best rate so far: a later setting that dies (the
        # kernel's OOM killer took TRL without checkpointing at 256 tokens on 24 GB) loses nothing.
        save([bench.add_floors(dict(r), rate.best, rate.best_read) for r in results])
    results = [bench.add_floors(r, rate.best, rate.best_read) for r in results]
    bench.print_table(results, rate)
    save(results)
    if a.output:
        print(f"\nwrote {a.output}")
    return 0


def cmd_tasks(argv: list[str]) -> int:
    """``workbench tasks``: the registered tasks, each with the checker that decides "correct"."""
    from workbench.tasks import get_task, list_tasks

    for name, description in list_tasks():
        print(f"{name:20s} {description}")
        print(f"{'':20s}   correct: {get_task(name).checker}")
    print("\nAlso: any reasoning-gym dataset name (kwargs via --task_kwargs), or a path to a .jsonl file "
          "of {\"question\", \"answer\"} rows.")
    return 0

def cmd_audit(argv: list[str]) -> int:
    """``workbench audit RUN``: re-score a GRPO run's logged rollouts with today's checkers (no
    regeneration), list the rewards that would change and the gold answers the checker cannot read,
    and raise the alarms of workbench.analysis.audit; prints a short table, writes RUN/audit.json."""
    import argparse

    from workbench.analysis.audit import AUDIT_FILE, audit_run, format_audit

    p = argparse.ArgumentParser(prog="workbench audit", description=cmd_audit.__doc__)
    p.add_argument("run", help="a GRPO run directory (e.g. runs/demo)")
    p.add_argument("--no_write", action="store_true", help=f"print only; do not write {AUDIT_FILE} into the run")
    args = p.parse_args(argv)
    report = audit_run(args.run, write=not args.no_write)
    print(format_audit(report))
    if not args.no_write:
        print(f"\nwritten: {args.run.rstrip('/')}/{AUDIT_FILE}")
    return 0


def cmd_curves(argv: list[str]) -> int:
    """``workbench curves RUN``: R1-Zero's curves of a GRPO run: held-out metrics at each evaluation
    against step 0 on the same questions (paired, ± stderr over questions), and the training
    rollouts' reward, accuracy, format, length and reflective words per step."""
    import argparse

    from workbench.analysis.curves import format_heldout, format_training, heldout_curves, training_curves
    from workbench.errors import WorkbenchError
    from workbench.runlog import Run

    p = argparse.ArgumentParser(prog="workbench curves", description=cmd_curves.__doc__)
    p.add_argument("run", help="a GRPO run directory (e.g. runs/r1_zero_gemma)")
    p.add_argument("--every", type=int, default=1, help="print every N-th training step (and the last)")
    args = p.parse_args(argv)
    if not Run(args.run).file("config.yaml").is_file():
        raise WorkbenchError(f"{args.run}: not a run directory (no config.yaml)")
    print("held out:\n" + format_heldout(heldout_curves(args.run)))
    print("\ntraining:\n" + format_training(training_curves(args.run), every=max(1, args.every)))
    return 0
