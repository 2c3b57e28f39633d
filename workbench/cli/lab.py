"""``workbench lab``: R1-Zero in miniature on a 2-core CPU (workbench.lab), and its controls."""

from __future__ import annotations


def cmd_lab(argv: list[str]) -> int:
    """``workbench lab``: pretrain a tiny base model on a lab world (cached), run GRPO from it with the
    accuracy reward only, and print R1-Zero's curves against step 0; ``--ablation``: the controls."""
    import argparse

    import yaml

    from workbench.errors import WorkbenchError
    from workbench.lab import experiment
    from workbench.lab.world import WORLDS
    from workbench.runlog import Run

    p = argparse.ArgumentParser(prog="workbench lab", description=cmd_lab.__doc__)
    p.add_argument("--world", default=experiment.LAB_WORLD, choices=list(WORLDS), help="the lab world")
    p.add_argument("--priming", type=float, default=experiment.LAB_PRIMING,
                   help="share of self-verifying solutions in the pretraining corpus (0: the unprimed control)")
    p.add_argument("--noise", type=float, default=experiment.LAB_NOISE,
                   help="share of first answers in the corpus that slip (slips: in every style; pairsum: a wrong pair "
                        "in direct and worked solutions); see workbench.lab.world")
    p.add_argument("--seed", type=int, default=0, help="seed of the corpus, the base model and the RL run")
    p.add_argument("--config", help="a YAML file of GRPO settings over the lab's defaults, e.g. configs/lab_slips.yaml")
    p.add_argument("--max_steps", type=int, help="GRPO steps (default: the config's, else 200)")
    p.add_argument("--runs_root", default="runs", help="where the run directories go")
    p.add_argument("--ablation", action="store_true",
                   help="primed vs unprimed vs the world's control where checking cannot help, over --seeds; prints the table")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the ablation, comma-separated")
    p.add_argument("--table", action="store_true",
                   help="with --ablation: run nothing, print the table from the finished runs under --runs_root")
    p.add_argument("--smoke", action="store_true", help="everything shrunk to seconds (CI, notebooks)")
    a = p.parse_args(argv)
    for knob in ("priming", "noise"):
        if not 0.0 <= getattr(a, knob) <= 1.0:
            raise WorkbenchError(f"--{knob} must be in [0, 1], got {getattr(a, knob)}")
    overrides = {}
    if a.config:
        try:
            with open(a.config) as f:
                overrides = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise WorkbenchError(f"cannot read --config {a.config}: {e}") from None
        if not isinstance(overrides, dict):
            raise WorkbenchError(f"--config {a.config}: expected a mapping of GRPO settings")
    for key in ("task", "model", "seed"):
        if overrides.pop(key, None) is not None:
            print(f"--config: {key} is set by the lab (--world, --priming, --seed); ignored")
    if a.max_steps:
        overrides["max_steps"] = a.max_steps
    overrides["runs_root"] = a.runs_root
    if a.table and not a.ablation:
        raise WorkbenchError("--table prints the ablation from finished runs: use it with --ablation")
    if a.ablation:
        try:
            seeds = tuple(int(s) for s in a.seeds.split(","))
        except ValueError:
            raise WorkbenchError(f"--seeds needs comma-separated integers, got {a.seeds!r}") from None
        if a.table:
            results = experiment.read_ablation(a.runs_root, a.priming, seeds, noise=a.noise, world=a.world,
                                               smoke=a.smoke)
        else:
            results = experiment.run_ablation(a.priming, seeds, smoke=a.smoke, noise=a.noise, world=a.world,
                                              **overrides)
        print("\n" + experiment.format_ablation(results))
        return 0
    result = experiment.run_lab(a.world, a.priming, a.seed, smoke=a.smoke, noise=a.noise, **overrides)
    print(f"\n{result.name}: base model {result.model}, run directory {result.run_dir}")
    print(experiment.format_curves(result.curves))
    print("\n" + experiment.format_payoff(experiment.check_payoff(Run(result.run_dir).events())))
    return 0
