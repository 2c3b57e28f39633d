"""Multi-stage recipes: R1's pipeline (cold-start SFT -> reasoning RL -> rejection sampling -> SFT
-> RL), R1-Zero's single RL stage, and distillation, each stage its own run directory.

    workbench pipeline --config configs/r1_pipeline_demo.yaml [--runs_root DIR] [--name NAME] [--smoke]
    workbench pipeline --config configs/r1_pipeline_zero.yaml      # R1-Zero: the same GRPO steps, no SFT

    from workbench.stages.pipeline import load_recipe, run_pipeline
    result = run_pipeline(load_recipe("configs/r1_pipeline_demo.yaml"))
    result.table()          # stage, kind, held-out accuracy before -> after, seconds

A recipe is YAML::

    name: r1_demo
    defaults: {model: smollm2-135m-instruct, task: chain_sum, template: chat_think, seed: 0}
    stages:
      - {name: cold_start, kind: sft, data: "coldstart:chain_sum", epochs: 1}
      - {name: reasoning_rl, kind: grpo, rewards: {accuracy: 1, format: 0.5, language: 0.1}, max_steps: 10}
      - {name: rejection_sampling, kind: sample, n_questions: 64, k: 4}
      - {name: sft_2, kind: sft, from: base, data: ["stage:rejection_sampling", "coldstart:chain_sum"]}
      - {name: final_rl, kind: grpo, max_steps: 10}

- ``kind``: ``sft`` (workbench.stages.sft, SFTStageConfig keys), ``grpo`` (workbench.grpo.trainer,
  WorkbenchConfig keys) or ``sample`` (workbench.stages.rejection_sampling: rejection sampling; its keys are
  ``rejection_sample``'s, plus ``model``/``adapter`` to sample from a teacher).
- ``from``: the model a stage starts from (or samples from): ``previous`` (default: the policy of
  the newest trained stage, else ``defaults.model``), ``base`` (``defaults.model``), or a stage name.
  A trained stage's policy is its adapter folded into its starting model (``merged/`` in its run
  directory, workbench.models.merge_adapter), so the next stage trains and takes its KL reference
  from exactly the policy the last one left.
- ``data`` of an sft stage: files, ``coldstart:<task>``, or ``stage:<name>`` (a sample stage's output).
- ``budget_from: <stage>`` sets a trained stage's ``max_seconds`` to that stage's training seconds:
  "the same compute" for distillation versus RL on the student.
- ``defaults`` apply to every stage that has such a key; a stage's own keys win.

Every trained stage is evaluated greedily on the task's held-out items before and after; a stage
that starts from the policy the previous stage evaluated reuses that result as its "before", so
the chain of numbers is on the same questions throughout. The summary goes to
``<runs_root>/<name>.pipeline.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from workbench.config import ConfigError, SFTStageConfig, WorkbenchConfig, unknown_keys_message

KINDS = ("sft", "grpo", "sample")
STAGE_KEYS = ("name", "kind", "from", "budget_from")


def _sample_keys() -> set[str]:
    import inspect

    from workbench.stages.rejection_sampling import rejection_sample

    params = inspect.signature(rejection_sample).parameters
    return {n for n, p in params.items() if p.kind == p.KEYWORD_ONLY and n not in ("provenance", "progress")} | {
        "model", "adapter", "task", "task_kwargs", "seed", "runs_root", "run_name", "precision", "quantization", "step"}


def _keys(kind: str) -> set[str]:
    if kind == "sft":
        return {f.name for f in dataclasses.fields(SFTStageConfig)}
    if kind == "grpo":
        return {f.name for f in dataclasses.fields(WorkbenchConfig)}
    return _sample_keys()


@dataclass
class Stage:
    name: str
    kind: str
    settings: dict
    start: str = "previous"  # the recipe's ``from``
    budget_from: str | None = None


@dataclass
class Recipe:
    name: str
    stages: list[Stage]
    defaults: dict = field(default_factory=dict)

    def settings(self, stage: Stage) -> dict:
        """The stage's settings: recipe defaults that apply to its kind, then its own keys."""
        # defaults.model is the base model, never a stage's explicit choice: which model a stage
        # starts from (or samples from) is its ``from`` (or, for a teacher, its own ``model``).
        known = _keys(stage.kind) - {"model", "adapter"}
        return {**{k: v for k, v in self.defaults.items() if k in known}, **stage.settings}


def load_recipe(path_or_dict, **default_overrides) -> Recipe:
    """Parse and check a recipe (YAML path or dict); every problem is a ConfigError naming the stage."""
    data = path_or_dict if isinstance(path_or_dict, dict) else yaml.safe_load(Path(path_or_dict).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list) or not data["stages"]:
        raise ConfigError(f"{path_or_dict}: a recipe is a mapping with 'name', 'defaults' and a non-empty "
                          "'stages' list")
    unknown = [k for k in data if k not in ("name", "defaults", "stages")]
    if unknown:
        raise ConfigError(f"unknown recipe key(s) {unknown}; valid: name, defaults, stages")
    defaults = {**(data.get("defaults") or {}), **default_overrides}
    stages, seen = [], []
    for i, raw in enumerate(data["stages"]):
        if not isinstance(raw, dict):
            raise ConfigError(f"stage {i}: expected a mapping, got {raw!r}")
        name = str(raw.get("name") or f"stage{i}")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"stage {name!r}: unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        if name in seen:
            raise ConfigError(f"stage name {name!r} appears twice; stage names must be unique")
        settings = {k: v for k, v in raw.items() if k not in STAGE_KEYS}
        known = _keys(kind)
        bad = [k for k in settings if k not in known]
        if bad:
            raise ConfigError(f"stage {name!r} ({kind}): " + unknown_keys_message(bad, known | set(STAGE_KEYS)))
        start = str(raw.get("from", "previous"))
        if start not in ("previous", "base") and start not in seen:
            raise ConfigError(f"stage {name!r}: from {start!r} is not an earlier stage; valid: previous, base, "
                              f"{', '.join(seen) or '(no earlier stage)'}")
        budget = raw.get("budget_from")
        trained = [st.name for st in stages if st.kind != "sample"]
        if budget is not None and budget not in trained:
            raise ConfigError(f"stage {name!r}: budget_from {budget!r} is not an earlier sft or grpo stage "
                              f"({', '.join(trained) or 'none'})")
        if kind == "sft":
            data_sources = settings.get("data", [])
            for src in [data_sources] if isinstance(data_sources, str) else data_sources:
                if str(src).startswith("stage:") and str(src)[6:] not in seen:
                    raise ConfigError(f"stage {name!r}: data {src!r} names no earlier stage")
        stages.append(Stage(name, kind, settings, start, budget))
        seen.append(name)
    return Recipe(str(data.get("name") or Path(str(path_or_dict)).stem), stages, defaults)


@dataclass
class StageResult:
    name: str
    kind: str
    run_dir: str
    start_model: str
    seconds: float
    before: dict | None = None
    after: dict | None = None
    train_seconds: float | None = None
    steps: int | None = None
    policy: str | None = None  # the merged model this stage leaves (trained stages)
    data: str | None = None  # the SFT-ready JSONL it wrote (sample stages)
    stats: dict | None = None

    def summary(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("before", "after")}
        for phase in ("before", "after"):
            r = getattr(self, phase)
            if r:
                out[phase] = {"n": r["n"], "accuracy": r["accuracy"], "stderr": r["stderr"]}
        return out


@dataclass
class PipelineResult:
    name: str
    stages: list[StageResult]
    seconds: float

    def overall(self) -> dict | None:
        """Held-out gain from the first trained stage's "before" to the last one's "after" (paired)."""
        from workbench.analysis.evaluate import paired_difference

        trained = [s for s in self.stages if s.before and s.after]
        if not trained:
            return None
        first, last = trained[0].before, trained[-1].after
        return {"before": first["accuracy"], "after": last["accuracy"], **paired_difference(first, last)}

    def table(self) -> str:
        lines = [f"{'stage':22s} {'kind':6s} {'held-out before':>16s} {'after':>14s} {'minutes':>8s}  run"]
        for s in self.stages:
            acc = [f"{100 * r['accuracy']:5.1f} +- {100 * r['stderr']:4.1f}" if r else "" for r in (s.before, s.after)]
            extra = ""
            if s.stats:
                extra = f"  kept {s.stats.get('accepted')} of {s.stats.get('samples')} samples"
            lines.append(f"{s.name:22s} {s.kind:6s} {acc[0]:>16s} {acc[1]:>14s} {s.seconds / 60:8.1f}  "
                         f"{s.run_dir}{extra}")
        o = self.overall()
        if o:
            lines.append(f"overall: {100 * o['before']:.1f}% -> {100 * o['after']:.1f}% on {o['n']} held-out items, "
                         f"paired gain {100 * o['gain']:+.1f} +- {100 * o['stderr']:.1f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "seconds": self.seconds, "overall": self.overall(),
                "stages": [s.summary() for s in self.stages]}


def _finished_stage(stage: Stage, run_dir: Path, start: str, last: bool) -> StageResult | None:
    """The result of a stage whose run finished with its outputs complete (adapter, and the merged
    policy when a later stage needs it; a sample stage's data.jsonl), read from its run directory;
    None when it must run (or resume) again."""
    from workbench.runlog import Run

    run = Run(run_dir)
    if run.status() != "finished":
        return None
    events = run.events()
    end = next(e for e in reversed(events) if e.get("event") == "end")
    evals = run.evals()
    res = StageResult(stage.name, stage.kind, str(run_dir), start, end.get("seconds") or 0.0, evals.get("before"),
                      evals.get("after"), end.get("train_seconds"), end.get("steps"))
    if stage.kind == "sample":
        if not (run_dir / "data.jsonl").is_file():
            return None
        res.data = str(run_dir / "data.jsonl")
        res.stats = next((e for e in reversed(events) if e.get("event") == "sample_summary"), None)
        return res
    if not (run_dir / "adapter").is_dir():
        return None
    if not last and (run_dir / "merged").is_dir():
        res.policy = str(run_dir / "merged")
    return res


def _set_aside(run_dir: Path) -> Path:
    """Move an unfinished run that cannot be resumed (a sample stage has no checkpoints) out of the
    way, kept beside it: ``<run>.interrupted-<n>``."""
    n = 1
    while (target := run_dir.with_name(f"{run_dir.name}.interrupted-{n}")).exists():
        n += 1
    run_dir.rename(target)
    return target


def run_pipeline(recipe: Recipe, progress: bool = True, resume: bool = False) -> PipelineResult:
    """Run every stage in order; each writes ``<runs_root>/<recipe>-<i>-<stage>``.

    ``resume``: stages whose runs finished with their outputs are read back, not run again; a
    trained stage that was killed or interrupted continues from its last checkpoint; an unfinished
    sample stage is set aside (``<run>.interrupted-<n>``) and run again."""
    from workbench.models import merge_adapter
    from workbench.stages.sft import sft
    from workbench.grpo.trainer import train

    t0 = time.time()
    base = recipe.defaults.get("model") or WorkbenchConfig().model
    runs_root = Path(recipe.defaults.get("runs_root") or "runs")
    results: dict[str, StageResult] = {}
    policy_of: dict[str, str] = {}  # trained stage -> the model it leaves
    last_eval: dict[str, dict] = {}  # model -> its newest held-out "after" result
    previous = base
    out: list[StageResult] = []
    for i, stage in enumerate(recipe.stages, 1):
        settings = recipe.settings(stage)
        start = {"previous": previous, "base": base}.get(stage.start) or policy_of.get(stage.start, base)
        run_name = f"{recipe.name}-{i}-{stage.name}"
        info = {"pipeline": recipe.name, "pipeline_stage": stage.name, "stage_index": i, "start_model": start}
        s0 = time.time()
        if stage.budget_from:
            budget = results[stage.budget_from].train_seconds
            if not budget:
                raise ConfigError(f"stage {stage.name!r}: budget_from {stage.budget_from!r} trained nothing "
                                  "(no training time to match); point it at an sft or grpo stage")
            settings["max_seconds"] = budget
        run_dir = runs_root / run_name
        if not resume and run_dir.is_dir() and any(run_dir.iterdir()):
            from workbench.errors import WorkbenchError

            raise WorkbenchError(f"stage {stage.name!r}: run directory {str(run_dir)!r} exists; continue the pipeline "
                                 "with workbench pipeline --resume, or give it another --name")
        done = _finished_stage(stage, run_dir, start, i == len(recipe.stages)) if resume and run_dir.is_dir() else None
        if done is not None:
            if progress:
                print(f"\n== stage {i}/{len(recipe.stages)}: {stage.name} finished before: {run_dir}", flush=True)
            if stage.kind != "sample" and i < len(recipe.stages) and done.policy is None:
                done.policy = str(merge_adapter(start, run_dir / "adapter", run_dir / "merged",
                                                precision=settings.get("precision", "auto"), seed=settings.get("seed", 0)))
            if done.policy:
                policy_of[stage.name] = previous = done.policy
                if done.after:
                    last_eval[done.policy] = done.after
            if done.before:
                last_eval.setdefault(start, done.before)
            results[stage.name] = done
            out.append(done)
            continue
        if resume and run_dir.is_dir():
            if stage.kind == "sample":
                moved = _set_aside(run_dir)
                if progress:
                    print(f"stage {stage.name}: unfinished sample run set aside as {moved}", flush=True)
            else:
                settings["resume"] = True  # Stage continues it from its last checkpoint
        if progress:
            print(f"\n== stage {i}/{len(recipe.stages)}: {stage.name} ({stage.kind}) from {start}", flush=True)
        if stage.kind == "sample":
            res = _run_sample(settings, start, runs_root, run_name, info, progress)
        else:
            settings.update(model=start, runs_root=str(runs_root), run_name=run_name)
            if stage.kind == "sft":
                srcs = settings.get("data", SFTStageConfig().data)
                srcs = srcs.split(",") if isinstance(srcs, str) else list(srcs)
                settings["data"] = ",".join(results[s[6:]].data if s.startswith("stage:") else s for s in srcs)
                cfg = SFTStageConfig.from_dict(settings)
                r = sft(cfg, progress=progress, run_info=info, before=last_eval.get(start))
            else:
                cfg = WorkbenchConfig.from_dict(settings)
                r = train(cfg, progress=progress, run_info=info, before=last_eval.get(start))
            res = StageResult(stage.name, stage.kind, r.run_dir, start, 0.0, r.before, r.after, r.train_seconds,
                              r.steps)
            if r.before:
                last_eval.setdefault(start, r.before)  # a later stage from the same start reuses it
            if i < len(recipe.stages):  # a later stage may start from it
                res.policy = str(merge_adapter(start, Path(r.run_dir) / "adapter", Path(r.run_dir) / "merged",
                                               precision=cfg.precision, seed=cfg.seed))
                policy_of[stage.name] = previous = res.policy
                if r.after:
                    last_eval[res.policy] = r.after
        res.seconds = time.time() - s0
        results[stage.name] = res
        out.append(res)
    result = PipelineResult(recipe.name, out, time.time() - t0)
    runs_root.mkdir(parents=True, exist_ok=True)
    (runs_root / f"{recipe.name}.pipeline.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


def read_pipeline(runs_root: str | Path, name: str) -> PipelineResult:
    """A finished pipeline read back from ``<runs_root>/<name>.pipeline.json`` and its stages' run
    directories (found by name under ``runs_root``, so a moved runs folder still reads), with each
    stage's full held-out results (every item), so paired comparisons can be recomputed."""
    from workbench.errors import WorkbenchError
    from workbench.runlog import Run

    root = Path(runs_root)
    path = root / f"{name}.pipeline.json"
    if not path.is_file():
        raise WorkbenchError(f"no finished pipeline {name!r} under {root} (no {path.name}); run it with "
                             "`workbench pipeline --config configs/<recipe>.yaml`")
    data = json.loads(path.read_text())
    stages = []
    for i, st in enumerate(data["stages"], 1):
        run_dir = root / f"{name}-{i}-{st['name']}"
        if not run_dir.is_dir():
            raise WorkbenchError(f"pipeline {name!r}: stage run directory {run_dir} is missing")
        evals = Run(run_dir).evals()
        fields = {k: st.get(k) for k in ("start_model", "seconds", "train_seconds", "steps", "policy", "data", "stats")}
        stages.append(StageResult(st["name"], st["kind"], str(run_dir), before=evals.get("before"),
                                  after=evals.get("after"), **fields))
    return PipelineResult(name, stages, data.get("seconds", 0.0))


def _run_sample(settings: dict, start: str, runs_root: Path, run_name: str, info: dict, progress: bool) -> StageResult:
    from workbench.stages.rejection_sampling import sample_to_run

    settings = dict(settings)
    model = settings.pop("model", None) or start
    settings.update(runs_root=str(runs_root), run_name=run_name)
    r = sample_to_run(model=model, progress=progress, run_info=info, **settings)
    return StageResult(info["pipeline_stage"], "sample", str(r.run_dir), model, 0.0, data=str(r.data_path),
                       stats=r.stats)


def smoke_recipe(recipe: Recipe) -> Recipe:
    """The same stages, shrunk to seconds on the tiny random model (CI, notebooks' SMOKE mode)."""
    shrink = {
        "sft": {"max_steps": 1, "per_device_train_batch_size": 2},
        "grpo": {"per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 4},
        "sample": {"n_questions": 2, "k": 2, "max_new_tokens": 4},
    }
    defaults = {**recipe.defaults, "model": "tiny-random", "eval_items": 2, "eval_max_new_tokens": 4}
    stages = [Stage(s.name, s.kind, {**s.settings, **shrink[s.kind]}, s.start, s.budget_from) for s in recipe.stages]
    for s in stages:
        if s.kind == "grpo":  # a tenth of the steps, so recipes with equal step budgets stay equal
            s.settings["max_steps"] = max(1, int(s.settings.get("max_steps", WorkbenchConfig().max_steps)) // 10)
    for s in stages:
        if s.kind == "sample" and s.settings.get("model"):  # a named teacher becomes the tiny model too
            s.settings.update(model="tiny-random", adapter=None)
        data = s.settings.get("data")
        if s.kind == "sft" and data is not None:
            # The random model's samples never pass the verifier, so sampled data come out empty;
            # the shipped cold-start set keeps such a stage trainable.
            data = [data] if isinstance(data, str) else list(data)
            if all(str(d).startswith("stage:") for d in data):
                s.settings["data"] = data + [f"coldstart:{defaults.get('task', 'chain_sum')}"]
    return Recipe(recipe.name, stages, defaults)
