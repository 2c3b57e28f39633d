"""The verbs that make SFT data: ``workbench coldstart`` (written chains of thought) and
``workbench sample`` (rejection sampling from a policy)."""

from __future__ import annotations


def cmd_coldstart(argv: list[str]) -> int:
    """``workbench coldstart``: write R1-style cold-start SFT data for an arithmetic task."""
    import argparse
    import warnings

    from workbench.stages.cold_start import SUPPORTED_TASKS, build_cold_start
    from workbench.stages.sft_data import write_jsonl

    p = argparse.ArgumentParser(prog="workbench coldstart", description=cmd_coldstart.__doc__)
    p.add_argument("--task", default="chain_sum", help=f"one of {', '.join(SUPPORTED_TASKS)}")
    p.add_argument("--n", type=int, default=300, help="rows to write")
    p.add_argument("--seed", type=int, default=0, help="task seed and phrasing seed")
    p.add_argument("--output", required=True, help="the JSONL file to write")
    a = p.parse_args(argv)
    stats: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the count below says it
        rows = build_cold_start(a.task, a.n, a.seed, stats=stats)
    write_jsonl(rows, a.output)
    styles = ", ".join(f"{k} {v}" for k, v in sorted(stats["by_style"].items()))
    print(f"wrote {len(rows)} rows ({styles}) from {stats['questions']} distinct train questions of {a.task} "
          f"to {a.output}; skipped: {stats['unparseable']} unparseable, {stats['failed_verification']} failed "
          f"verification, {stats['duplicates']} duplicates")
    return 0


def cmd_sample(argv: list[str]) -> int:
    """``workbench sample``: rejection sampling from a model, an adapter or a run's policy."""
    import argparse

    from workbench.errors import WorkbenchError
    from workbench.models import EMBEDDED_MODEL, load_policy
    from workbench.runlog import Run
    from workbench.stages.rejection_sampling import format_stats, rejection_sample, sample_to_run
    from workbench.stages.sft_data import write_jsonl

    p = argparse.ArgumentParser(prog="workbench sample", description=cmd_sample.__doc__)
    p.add_argument("--run", help="a run directory: its model, task, template, seed and trained adapter")
    p.add_argument("--model", help=f"model name or path (default: the run's, else {EMBEDDED_MODEL})")
    p.add_argument("--adapter", help="a LoRA adapter directory to apply to the model")
    p.add_argument("--task", help="task name (default: the run's, else chain_sum)")
    p.add_argument("--template", help="prompt template (default: the run's, else chat_think)")
    p.add_argument("--stop", help="where a sample ends besides EOS: auto (the template's end of turn), none, or "
                                  "strings separated by '|' (default: the run's, else auto)")
    p.add_argument("--seed", type=int, help="task and sampling seed (default: the run's, else 0)")
    p.add_argument("--split", default="train", choices=("train", "eval"),
                   help="questions to sample (train: never SFT on held-out questions)")
    p.add_argument("--n_questions", type=int, default=64, help="distinct questions")
    p.add_argument("--k", type=int, default=4, help="samples per question")
    p.add_argument("--max_new_tokens", type=int, help="default: the run's max_completion_length, else 256")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top_p", type=float, default=0.95)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--no_format_filter", action="store_true", help="keep samples without the strict R1 format")
    p.add_argument("--min_language", type=float, default=0.9, help="minimum language consistency of the CoT")
    p.add_argument("--language", default="en", help="target language of the CoT")
    p.add_argument("--min_tokens", type=int, default=1)
    p.add_argument("--max_tokens", type=int, help="longest completion kept (default: no limit)")
    p.add_argument("--precision", help="default: the run's, else auto")
    p.add_argument("--quantization", help="default: the run's, else auto")
    p.add_argument("--output", help="write the kept rows here as JSONL")
    p.add_argument("--runs_root", help="record the sampling as a run directory under this root (default runs)")
    p.add_argument("--run_name", help="name of that run directory (implies --runs_root runs)")
    a = p.parse_args(argv)
    if not (a.output or a.runs_root or a.run_name):
        raise WorkbenchError("nothing to write: pass --output FILE.jsonl and/or --run_name NAME (a run directory)")

    run = Run(a.run) if a.run else None
    cfg = run.config() if run else {}
    adapter = a.adapter or (str(run.adapter_dir) if run and run.adapter_dir.is_dir() else None)
    seed = a.seed if a.seed is not None else cfg.get("seed", 0)
    common = dict(
        template=a.template or cfg.get("template") or "chat_think", stop=a.stop or cfg.get("stop") or "auto",
        n_questions=a.n_questions, k=a.k,
        max_new_tokens=a.max_new_tokens or cfg.get("max_completion_length") or 256,
        temperature=a.temperature, top_p=a.top_p, split=a.split, min_tokens=a.min_tokens, max_tokens=a.max_tokens,
        require_format=not a.no_format_filter, min_language=a.min_language, language=a.language,
        batch_size=a.batch_size)
    model = a.model or cfg.get("model") or EMBEDDED_MODEL
    task = a.task or cfg.get("task") or "chain_sum"
    task_kwargs = {} if a.task else (cfg.get("task_kwargs") or {})  # a run's kwargs belong to the run's task
    precision, quantization = a.precision or cfg.get("precision", "auto"), a.quantization or cfg.get("quantization", "auto")
    step = run.checkpoint_step() if run and adapter and not a.adapter else None
    if a.runs_root or a.run_name:
        result = sample_to_run(model=model, adapter=adapter, task=task, task_kwargs=task_kwargs, seed=seed,
                               runs_root=a.runs_root or "runs", run_name=a.run_name, precision=precision,
                               quantization=quantization, step=step, **common)
        print(f"run directory: {result.run_dir}")
    else:
        from workbench.tasks import get_task

        task_obj = get_task(task, seed=seed, **task_kwargs)
        policy, tokenizer = load_policy(model, adapter, precision, quantization, seed)
        result = rejection_sample(policy, tokenizer, task_obj, provenance={"model": model, "adapter": adapter,
                                                                          "step": step}, seed=seed, **common)
    print(format_stats(result.stats))
    if a.output:
        print(f"wrote {len(result.rows)} rows to {write_jsonl(result.rows, a.output)}")
    return 0
