"""``workbench <verb>``: parses arguments, then calls the library.

    workbench demo  [--key value ...]                 the main job: GRPO on the embedded model, ~15 min on 2 CPU cores
    workbench train --config configs/X.yaml [--key value ...]
    workbench tasks                                    list the registered tasks
    workbench bench [--steps N] [--output FILE.json]   TRL as it comes vs the workbench path, step time
"""

from __future__ import annotations

import sys

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
    from workbench.train import train

    cfg = parse_cli(argv)
    _print_result(train(cfg))
    return 0


def cmd_demo(argv: list[str]) -> int:
    # The demo is the config defaults (configs/demo.yaml spells them out); flags still override.
    from workbench.config import parse_cli
    from workbench.train import train

    cfg = parse_cli(argv)
    print(f"workbench demo: GRPO on {cfg.model}, task {cfg.task}, {cfg.max_steps} steps of "
          f"{cfg.prompts_per_step} prompts x {cfg.num_generations} rollouts")
    _print_result(train(cfg))
    return 0


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


COMMANDS = {"train": cmd_train, "demo": cmd_demo, "tasks": cmd_tasks, "bench": cmd_bench}


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
