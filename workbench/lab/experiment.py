"""R1-Zero in miniature: GRPO from a lab world's base model, its curves against step 0, and the controls.

    from workbench.lab.experiment import run_lab, lab_curves
    result = run_lab("slips", priming=0.5, noise=0.4, seed=0)   # pretrain (cached) -> GRPO -> curves
    print(format_curves(result.curves))

The GRPO run is an ordinary workbench run (the app opens it): accuracy reward only, every parameter
trained (``finetune: full``), a completion budget with room to search and verify, and a held-out
evaluation every ``eval_every`` steps with ``eval_samples`` sampled answers per question, drawn from
the evaluation's own random generator (``workbench.lifecycle.Stage.evaluate``).

``lab_curves`` turns those evaluations into R1-Zero's curves: per step, sampled pass@1, greedy
accuracy, mean response length, the verification / "wait" rates and the faithfulness of checks,
each with its change from step 0 on the same held-out questions (a paired difference over
questions, with its standard error).

``run_ablation`` runs the controls (``conditions``): primed vs unprimed (priming 0), and the world's
variant where checking cannot help, over several seeds, and ``format_ablation`` prints the
table of final-minus-step-0 changes with error bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workbench.analysis.curves import (CHECK_METRICS, HELDOUT_METRICS, cell, format_heldout, heldout_curves,
                                       item_metadata, mean_se)
from workbench.config import WorkbenchConfig
from workbench.lab.base_model import Recipe, ensure_model
from workbench.lab.world import WORLDS
from workbench.runlog import Run, unused_run_name

# The lab's GRPO settings (configs/lab_slips.yaml spells them out). Units: steps, tokens, rows.
LAB_DEFAULTS = dict(
    template="auto", finetune="full", rewards={"accuracy": 1.0}, max_steps=200, num_generations=8,
    per_device_train_batch_size=64, temperature=1.0, max_completion_length=192, learning_rate=1e-4,
    beta=0.0, loss_type="grpo", eval_items=128, eval_every=25, eval_samples=4, eval_temperature=1.0,
    eval_batch_size=128, save_adapter=True,
)
# The lab's headline condition (``workbench lab`` without options): the world, the share of
# self-checking solutions in the pretraining corpus, and the share of first answers that slip.
LAB_WORLD, LAB_PRIMING, LAB_NOISE = "slips", 0.5, 0.4
# The lab's columns of the held-out curves (workbench.analysis.curves): (name, label).
METRICS = tuple(m for m in HELDOUT_METRICS + CHECK_METRICS if m[0] not in ("format", "reflective"))


@dataclass
class LabResult:
    name: str  # the base model's name without "lab:", e.g. "slips-p50-n40-s1"
    model: str  # the base model's name (lab:...)
    run_dir: str
    curves: list[dict] = field(default_factory=list)


# --smoke: every run shrunk to seconds (a smoke base model, a few short steps).
SMOKE_OVERRIDES = dict(max_steps=2, per_device_train_batch_size=8, num_generations=4, max_completion_length=24,
                       eval_items=4, eval_every=1, eval_samples=2)


def lab_config(world: str = LAB_WORLD, priming: float = LAB_PRIMING, seed: int = 0, smoke: bool = False,
               noise: float = LAB_NOISE, **overrides) -> WorkbenchConfig:
    """The GRPO config of one lab run: ``LAB_DEFAULTS`` (then ``SMOKE_OVERRIDES`` if ``smoke``), the
    world's task and base model, then ``overrides``."""
    model = Recipe(world=world, priming=priming, noise=noise, seed=seed, smoke=smoke).name
    if smoke:
        overrides = {**SMOKE_OVERRIDES, **overrides}
    return WorkbenchConfig(**{**LAB_DEFAULTS, "task": world, "model": model, "seed": seed, **overrides})


def run_lab(world: str = LAB_WORLD, priming: float = LAB_PRIMING, seed: int = 0, progress: bool = True,
            smoke: bool = False, noise: float = LAB_NOISE, **overrides) -> LabResult:
    """Pretrain (or reuse) the base model of (world, priming, seed), run GRPO from it, read its curves."""
    from workbench.grpo.trainer import train

    cfg = lab_config(world, priming, seed, smoke=smoke, noise=noise, **overrides)
    if not cfg.run_name:
        cfg.run_name = unused_run_name(cfg.runs_root, f"{cfg.model.removeprefix('lab:')}-{datetime.now():%Y%m%d-%H%M%S}")
    ensure_model(cfg.model, progress=progress)
    result = train(cfg, progress=progress)
    return LabResult(cfg.model.removeprefix("lab:"), cfg.model, result.run_dir, lab_curves(result.run_dir))


def lab_curves(run_dir) -> list[dict]:
    """``workbench.analysis.curves.heldout_curves`` of a lab run: per evaluated step, each metric
    (``METRICS``, the lab world's checks included) and its paired change from step 0."""
    return heldout_curves(run_dir)


def check_payoff(evals: list[dict]) -> list[dict]:
    """Does checking pay in the policy's own samples? Per evaluation event (sorted by step): the
    sampled pass@1 of the samples that show verification (``traces`` behaviour) and of those that
    do not. RL with an outcome reward can only grow a behaviour whose samples are right more often
    than the rest, so this is the gate to read at step 0 before expecting verification to emerge.

    ``evals``: a run's "eval" events (``Run.events()``) with their ``sampled`` items. Returns dicts
    ``step``, ``n_check``, ``pass_check``, ``pass_check_se``, ``n_plain``, ``pass_plain``,
    ``pass_plain_se`` (rates in [0, 1]; None without samples). The standard errors treat samples as
    independent; samples of one question are not, so read them as a lower bound.
    """
    from workbench.analysis import traces

    rows = []
    for e in sorted((e for e in evals if e.get("event") == "eval" and "step" in e), key=lambda e: e["step"]):
        split: dict[bool, list[float]] = {True: [], False: []}
        for q in (e.get("sampled") or {}).get("items", []):
            for sample in q["samples"]:
                checks = traces.tag(sample["completion"])["behaviours"]["verification"] > 0
                split[checks].append(float(sample["correct"]))
        row = {"step": e["step"]}
        for key, values in (("check", split[True]), ("plain", split[False])):
            row[f"n_{key}"] = len(values)
            row[f"pass_{key}"], row[f"pass_{key}_se"] = mean_se(values)
        rows.append(row)
    return rows


def format_payoff(rows: list[dict]) -> str:
    """``check_payoff`` as text: per step, pass@1 with and without a check (± stderr, n samples)."""
    lines = [f"{'step':>5} {'pass@1 with a check':>28} {'pass@1 without':>28}"]
    for r in rows:
        cells = [f"{cell(r[f'pass_{k}'], r[f'pass_{k}_se'], True)} (n={r[f'n_{k}']})" for k in ("check", "plain")]
        lines.append(f"{r['step']:>5} " + " ".join(f"{c:>28}" for c in cells))
    lines.append("checking can only grow under an outcome reward where its samples are right more often "
                 "(read step 0); ± stderr over samples")
    return "\n".join(lines)


def check_curves(rollouts: list[dict], config: dict) -> list[dict]:
    """Faithfulness of the checks in training rollouts, per step, for a lab world (empty for other tasks).

    ``rollouts``: the run's rollout records (``step``, ``prompt_id``, ``completion``); ``config``: the
    run's config (its ``task`` names the world). One dict per step: ``step``, ``n`` (rollouts),
    ``check_share`` (share of rollouts with at least one judged check), and the means over the
    rollouts that have them of ``task.check_metrics``'s ``arithmetic_right``, ``verdict_follows``,
    ``faithful`` and ``wait_after_correct`` (None where no rollout has one). Shares in [0, 1].
    """
    from workbench.tasks import get_task

    if config.get("task") not in WORLDS:
        return []
    task = get_task(config["task"], seed=config.get("seed", 0), **(config.get("task_kwargs") or {}))
    keys = ("arithmetic_right", "verdict_follows", "faithful", "wait_after_correct")
    by_step: dict[int, list[dict]] = {}
    for r in rollouts:
        if r.get("step") is None or not r.get("prompt_id"):
            continue
        try:
            item = {"metadata": item_metadata(task, r["prompt_id"])}
        except (ValueError, KeyError, IndexError):
            continue  # not an item id of this world
        by_step.setdefault(int(r["step"]), []).append(task.check_metrics(r.get("completion") or "", item))
    rows = []
    for step in sorted(by_step):
        ms = by_step[step]
        row = {"step": step, "n": len(ms), "check_share": sum(m["faithful"] is not None for m in ms) / len(ms)}
        for k in keys:
            vs = [m[k] for m in ms if m[k] is not None]
            row[k] = sum(vs) / len(vs) if vs else None
        rows.append(row)
    return rows


def format_curves(curves: list[dict]) -> str:
    """The lab's curves as a text table (``METRICS``' columns): value ± stderr per step, then the last
    step's change from step 0."""
    return format_heldout(curves, [n for n, _ in METRICS])


def conditions(world: str, priming: float, noise: float) -> list[tuple[str, str, float, float]]:
    """The ablation's conditions for ``world``: (label, world, priming, noise) each.

    Always the primed model and the unprimed one (priming 0: does checking emerge only where the base
    policy already had it?), then the world's control where checking cannot help: in ``pairsum``
    the blind variant (the target is hidden, so a check carries no information); in ``slips`` a
    corpus without slips (noise 0: the base policy's first answers are right, so a check never
    catches anything). Raises WorkbenchError for ``pairsum_blind`` (it is itself the control).
    """
    from workbench.errors import WorkbenchError

    control = {"pairsum": ("blind (checking cannot help)", "pairsum_blind", priming, noise),
               "slips": ("no slips (checking cannot help)", "slips", priming, 0.0)}
    if world not in control:
        raise WorkbenchError(f"no ablation for lab world {world!r}; valid choices: {', '.join(control)}")
    return [("primed", world, priming, noise), ("unprimed", world, 0.0, noise), control[world]]


def run_ablation(priming: float = LAB_PRIMING, seeds=(0, 1, 2), progress: bool = True, smoke: bool = False,
                 noise: float = LAB_NOISE, world: str = LAB_WORLD, **overrides) -> dict[str, list[LabResult]]:
    """Every condition of ``conditions(world, priming, noise)`` x ``seeds``; condition label -> its
    results, in seed order. Each (condition, seed) pretrains its own base model (cached)."""
    out: dict[str, list[LabResult]] = {}
    for label, w, p, n in conditions(world, priming, noise):
        for seed in seeds:
            out.setdefault(label, []).append(run_lab(w, p, seed, progress=progress, smoke=smoke, noise=n, **overrides))
    return out


def read_ablation(runs_root, priming: float = LAB_PRIMING, seeds=(0, 1, 2), noise: float = LAB_NOISE,
                  world: str = LAB_WORLD, smoke: bool = False) -> dict[str, list[LabResult]]:
    """The ablation as ``run_ablation`` returns it, read from finished runs under ``runs_root``
    instead of run: for each condition and seed, the newest finished run of that base model (run
    names start with the model's name, as ``run_lab`` writes them). So seeds can run side by side
    (``workbench lab --ablation --seeds 0`` in one shell, ``--seeds 1`` in another) and one table
    be printed at the end (``--table``). Raises WorkbenchError naming the runs that are missing."""
    from pathlib import Path

    from workbench.errors import WorkbenchError

    root = Path(runs_root)
    out: dict[str, list[LabResult]] = {}
    missing = []
    for label, w, p, n in conditions(world, priming, noise):
        for seed in seeds:
            model = Recipe(world=w, priming=p, noise=n, seed=seed, smoke=smoke).name
            stem = model.removeprefix("lab:") + "-"
            runs = sorted((d for d in root.glob(stem + "*") if d.is_dir() and d.name[len(stem):][:1].isdigit()
                           and Run(d).status() == "finished"), key=lambda d: d.name)
            if not runs:
                missing.append(model)
                continue
            out.setdefault(label, []).append(
                LabResult(model.removeprefix("lab:"), model, str(runs[-1]), lab_curves(runs[-1])))
    if missing:
        raise WorkbenchError(f"no finished lab run under {root} for {', '.join(missing)}; run them first "
                             f"(workbench lab --ablation --seeds ...)")
    return out


def format_ablation(results: dict[str, list[LabResult]]) -> str:
    """Final-minus-step-0 change of each metric per condition: the mean over seeds ± the standard
    error over seeds, then each seed's own change ± its stderr over questions."""
    names = [n for n, _ in METRICS if n != "wait_after_correct"]
    lines = [f"{'condition':32s} " + " ".join(f"{'Δ ' + n:>22}" for n in names) + "   final pass@1"]
    for label, runs in results.items():
        finals = [r.curves[-1] for r in runs if r.curves]
        cells = []
        for n in names:
            deltas = [f[f"{n}_delta"] for f in finals if f.get(f"{n}_delta") is not None]
            mean, se = mean_se(deltas)
            cells.append(f"{cell(mean, se, n != 'tokens'):>22}")
        p1 = mean_se([f["pass@1"] for f in finals if f.get("pass@1") is not None])
        lines.append(f"{label:32s} " + " ".join(cells) + f"   {cell(*p1, True)}")
        for r in runs:
            f = r.curves[-1] if r.curves else {}
            lines.append(f"{'  ' + r.name:32s} " + " ".join(
                f"{cell(f.get(n + '_delta'), f.get(n + '_delta_se'), n != 'tokens'):>22}" for n in names)
                + f"   {cell(f.get('pass@1'), f.get('pass@1_se'), True)}")
    lines.append("Δ: last evaluation minus step 0 on the same held-out questions; a condition's row: mean over "
                 "seeds ± stderr over seeds; a seed's row: ± stderr over questions")
    return "\n".join(lines)


__all__ = ["LAB_DEFAULTS", "LAB_WORLD", "LAB_PRIMING", "LAB_NOISE", "METRICS", "WORLDS", "LabResult", "conditions",
           "lab_config", "run_lab", "lab_curves", "format_curves", "check_payoff", "format_payoff", "check_curves",
           "run_ablation", "read_ablation", "format_ablation"]
