"""``workbench <verb>``: parses arguments, then calls the library.

    workbench demo  [--key value ...] [--no_app] [--app_port N]
                                                       the main job: GRPO on the embedded model, ~4 min on 2 CPU cores,
                                                       watched live in the app (its URL is printed; --no_app: without)
    workbench app   [--runs DIR] [--port N] [--host H] the app: watch runs train, compare them, try a model
    workbench train --config configs/X.yaml [--key value ...]
    workbench eval  --model NAME [--adapter DIR | --run DIR] --task NAME --k N --limit N --output FILE.json
                                                       pass@1 / pass@k / cons@k on held-out questions
    workbench sft   --data FILE.jsonl|coldstart:TASK [--config X.yaml] [--key value ...]
                                                       supervised fine-tuning (R1's cold start / second SFT)
    workbench coldstart --task NAME --n N --output FILE.jsonl
                                                       cold-start chains of thought from a task's worked solutions
    workbench sample --model NAME [--adapter DIR | --run DIR] --task NAME --k N --output FILE.jsonl
                                                       rejection sampling: verified, readable samples as SFT data
    workbench pipeline --config configs/r1_pipeline_demo.yaml
                                                       a multi-stage recipe (SFT -> GRPO -> sample -> SFT -> GRPO)
    workbench distill --teacher_run DIR [--student NAME] teacher -> student SFT, against GRPO on the student
                                                       for the same training time
    workbench tasks                                    list the registered tasks
    workbench bench [--steps N] [--output FILE.json]   TRL as it comes vs the workbench path, step time
"""

from __future__ import annotations

import sys
import threading

USAGE = __doc__


def _print_result(result) -> None:
    from workbench.evaluate import paired_difference

    print(f"\nrun directory: {result.run_dir}")
    if result.before and result.after:
        b, a = result.before, result.after
        d = paired_difference(b, a)
        print(f"held-out accuracy (greedy, {b['n']} items never seen in training):")
        print(f"  step 0 : {100 * b['accuracy']:.1f}% +- {100 * b['stderr']:.1f}")
        print(f"  after  : {100 * a['accuracy']:.1f}% +- {100 * a['stderr']:.1f}")
        print(f"  gain   : {100 * d['gain']:+.1f} points +- {100 * d['stderr']:.1f} (paired standard error)")
    print(f"wall time: {result.seconds / 60:.1f} min")


def cmd_train(argv: list[str]) -> int:
    from workbench.config import parse_cli
    from workbench.training import train

    cfg = parse_cli(argv)
    _print_result(train(cfg))
    return 0


def _pop_app_flags(argv: list[str]) -> tuple[list[str], bool, int | None]:
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


def cmd_demo(argv: list[str]) -> int:
    # The demo is the config defaults (configs/demo.yaml spells them out); flags still override.
    from workbench.config import parse_cli
    from workbench.training import default_run_name, train

    argv, app, app_port = _pop_app_flags(argv)
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
    _print_result(train(cfg))
    if url and sys.stdin.isatty():  # a person at a terminal: keep the app up to look at the finished run
        print(f"\nthe app is still serving the finished run at {url}; Ctrl-C to quit "
              f"(later: workbench app --runs {cfg.runs_root})", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


def cmd_app(argv: list[str]) -> int:
    from apps.app import main as app_main

    return app_main(argv)


def cmd_tasks(argv: list[str]) -> int:
    from workbench.tasks import list_tasks

    for name, description in list_tasks():
        print(f"{name:20s} {description}")
    print("\nAlso: any reasoning-gym dataset name (kwargs via --task_kwargs), or a path to a .jsonl file "
          "of {\"question\", \"answer\"} rows.")
    return 0


def cmd_bench(argv: list[str]) -> int:
    from workbench.bench import main as bench_main

    return bench_main(argv)


def cmd_eval(argv: list[str]) -> int:
    from workbench.evaluate import main as eval_main

    return eval_main(argv)


def _library_main(module: str):
    """A verb whose parser lives with its library module (imported only when the verb runs)."""
    def cmd(argv: list[str]) -> int:
        import importlib

        return importlib.import_module(module).main(argv)

    return cmd


COMMANDS = {"train": cmd_train, "demo": cmd_demo, "app": cmd_app, "tasks": cmd_tasks, "bench": cmd_bench,
            "eval": cmd_eval, "sft": _library_main("workbench.sft"), "coldstart": _library_main("workbench.coldstart"),
            "sample": _library_main("workbench.sampling"), "pipeline": _library_main("workbench.pipeline"),
            "distill": _library_main("workbench.distill")}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in COMMANDS:
        print(f"unknown command {verb!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    from workbench.errors import WorkbenchError

    try:
        return COMMANDS[verb](rest)
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
