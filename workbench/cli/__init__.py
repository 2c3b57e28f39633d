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
    workbench lab [--world pairsum] [--priming 0.1] [--seed 0] [--ablation]
                                                       the aha lab: R1-Zero in miniature from a base model
                                                       pretrained on the CPU in minutes, with its controls
    workbench tasks                                    list the registered tasks and what counts as correct
    workbench audit RUN                                re-score a run's rollouts with today's checkers; alarms
    workbench curves RUN [--every N]                   R1-Zero's curves: held-out against step 0, training per step
    workbench bench [--steps N] [--output FILE.json]   TRL as it comes vs the workbench path, step time
    workbench bench-app [--rollouts 1000000]           the app's readers and the notebook reader on a synthetic run

    --verbose (with any verb)                          also show the third-party warnings hidden by default
"""

from __future__ import annotations

import sys

from workbench.cli.data import cmd_coldstart, cmd_sample
from workbench.cli.lab import cmd_lab
from workbench.cli.measure import cmd_audit, cmd_bench, cmd_curves, cmd_eval, cmd_tasks
from workbench.cli.run import cmd_demo, cmd_distill, cmd_pipeline, cmd_sft, cmd_train

USAGE = __doc__


def cmd_app(argv: list[str]) -> int:
    """``workbench app``: the Gradio app on a runs folder."""
    from apps.app import main as app_main

    return app_main(argv)


def cmd_bench_app(argv: list[str]) -> int:
    """``workbench bench-app``: open, one step, curves, refresh and memory on a synthetic big run (apps.bench)."""
    from apps.bench import main as bench_main

    return bench_main(argv)


# The one verb table: ``workbench <verb>`` -> the function that parses its arguments and runs it.
COMMANDS = {
    "train": cmd_train, "demo": cmd_demo, "sft": cmd_sft, "pipeline": cmd_pipeline, "distill": cmd_distill,
    "coldstart": cmd_coldstart, "sample": cmd_sample, "lab": cmd_lab,
    "eval": cmd_eval, "bench": cmd_bench, "tasks": cmd_tasks, "audit": cmd_audit, "curves": cmd_curves, "app": cmd_app,
    "bench-app": cmd_bench_app,
}


def main(argv: list[str] | None = None) -> int:
    """The ``workbench`` console script. Returns the exit status: 0, or 2 for bad input (one line on stderr).

    ``--verbose`` anywhere in ``argv`` shows the third-party warnings that ``workbench.cli.quiet`` hides."""
    from workbench.cli import quiet

    argv, verbose = quiet.pop_verbose(list(sys.argv[1:] if argv is None else argv))
    if not verbose:
        quiet.install()
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
