"""Multi-stage recipes: R1's five stages end to end on the tiny model, each stage a run the app opens."""

import json
from pathlib import Path

import pytest

from workbench.config import ConfigError
from workbench.stages.pipeline import load_recipe, read_pipeline, run_pipeline, smoke_recipe
from workbench.runlog import Run

CONFIGS = Path(__file__).parent.parent / "configs"
RECIPES = sorted(CONFIGS.glob("r1_pipeline_*.yaml"))
TINY = {"model": "tiny-random", "task": "chain_sum", "template": "chat_think", "seed": 0, "eval_items": 2,
        "eval_max_new_tokens": 4}
SFT = {"kind": "sft", "max_steps": 1, "per_device_train_batch_size": 2}
GRPO = {"kind": "grpo", "max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 2,
        "max_completion_length": 4, "rewards": {"accuracy": 1.0, "format": 0.5, "language": 0.1}}


def test_r1_pipeline_runs_end_to_end_and_chains_its_stages(tmp_path):
    import torch

    from workbench.models import load_model, resolve_precision

    runs = tmp_path / "runs"
    recipe = smoke_recipe(load_recipe(CONFIGS / "r1_pipeline_demo.yaml", runs_root=str(runs)))
    recipe.name = "r1"
    result = run_pipeline(recipe, progress=False)
    names = [p.name for p in sorted(runs.iterdir()) if p.is_dir()]
    assert names == ["r1-1-cold_start", "r1-2-reasoning_rl", "r1-3-rejection_sampling", "r1-4-sft_2",
                     "r1-5-final_rl"]
    assert Run(runs / "r1-2-reasoning_rl").config()["rewards"] == {"accuracy": 1.0, "format": 0.5, "language": 0.1}
    for name in names:
        assert Run(runs / name).status() == "finished"
    s = {st.name: st for st in result.stages}
    # Each trained stage but the last leaves its policy merged; the next stage starts from it.
    assert s["reasoning_rl"].start_model == s["cold_start"].policy == str(runs / "r1-1-cold_start" / "merged")
    assert Run(runs / "r1-2-reasoning_rl").config()["model"] == s["cold_start"].policy
    assert s["rejection_sampling"].start_model == s["reasoning_rl"].policy
    assert s["sft_2"].start_model == "tiny-random"  # from: base, as R1's second SFT
    assert s["final_rl"].start_model == s["sft_2"].policy and s["final_rl"].policy is None
    # The second SFT read the sampled data next to the cold-start set.
    sft2 = Run(runs / "r1-4-sft_2")
    assert s["rejection_sampling"].data in sft2.config()["data"] and "coldstart:chain_sum" in sft2.config()["data"]
    # A stage that starts where the last one was evaluated reuses that evaluation (same items).
    before = Run(runs / "r1-2-reasoning_rl").evals()["before"]
    assert before.get("reused") and before["items"] == Run(runs / "r1-1-cold_start").evals()["after"]["items"]
    assert before["step"] == 0  # the stage's own step 0, whatever step the earlier stage evaluated at
    # The merged policy is the adapter folded in: its weights moved away from the base model's.
    base, _ = load_model("tiny-random", resolve_precision("fp32", "none"), seed=0)
    merged, _ = load_model(s["cold_start"].policy, resolve_precision("fp32", "none"))
    diffs = [(a - b).abs().max().item() for (n, a), (_, b) in zip(base.named_parameters(), merged.named_parameters())
             if "proj" in n]
    assert max(diffs) > 0
    assert torch.equal(base.model.embed_tokens.weight, merged.model.embed_tokens.weight)  # LoRA left these alone
    summary = json.loads((runs / "r1.pipeline.json").read_text())
    assert [st["name"] for st in summary["stages"]] == list(s)
    assert summary["stages"][2]["stats"]["samples"] == 4
    assert "overall" in summary and "r1-5-final_rl" in result.table()
    # Read back (from a moved runs folder too) with every held-out item, so the pairing recomputes.
    moved = tmp_path / "moved"
    runs.rename(moved)
    back = read_pipeline(moved, "r1")
    assert [st.name for st in back.stages] == list(s) and back.stages[0].run_dir == str(moved / "r1-1-cold_start")
    assert back.overall() == result.overall()

    # Resume: stage 4 killed after its checkpoint (its end event never written), stage 5 never started.
    import shutil

    events = moved / "r1-4-sft_2" / "events.jsonl"
    kept = [json.loads(line) for line in events.read_text().splitlines()]
    kept = [{**e, "pid": 2 ** 22 + 7} if e["event"] == "start" else e  # its process is gone (this one ran it)
            for e in kept if e["event"] not in ("end", "train_summary")]
    events.write_text("".join(json.dumps(e) + "\n" for e in kept))
    shutil.rmtree(moved / "r1-5-final_rl")
    untouched = {n: (moved / n / "events.jsonl").stat().st_mtime_ns for n in names[:3]}
    recipe.defaults["runs_root"] = str(moved)
    resumed = run_pipeline(recipe, progress=False, resume=True)
    assert {n: (moved / n / "events.jsonl").stat().st_mtime_ns for n in names[:3]} == untouched  # read back, not rerun
    assert [e["event"] for e in Run(moved / "r1-4-sft_2").events()].count("resume") == 1
    for name in names:
        assert Run(moved / name).status() == "finished"
    r = {st.name: st for st in resumed.stages}
    assert r["final_rl"].start_model == r["sft_2"].policy == str(moved / "r1-4-sft_2" / "merged")
    assert r["rejection_sampling"].data == s["rejection_sampling"].data.replace(str(runs), str(moved))


def test_smoke_keeps_equal_step_budgets_equal():
    demo = smoke_recipe(load_recipe(CONFIGS / "r1_pipeline_demo.yaml"))
    zero = smoke_recipe(load_recipe(CONFIGS / "r1_pipeline_zero.yaml"))
    steps = [sum(st.settings["max_steps"] for st in r.stages if st.kind == "grpo") for r in (demo, zero)]
    assert steps[0] == steps[1] >= 2


def test_same_compute_budget_for_rl_on_the_student(tmp_path):
    recipe = {"name": "d", "defaults": {**TINY, "runs_root": str(tmp_path)}, "stages": [
        {"name": "sft", "data": "coldstart:chain_sum", **{**SFT, "max_steps": 2}},
        {"name": "rl", "from": "base", "budget_from": "sft", **{**GRPO, "max_steps": 200}},
    ]}
    result = run_pipeline(load_recipe(recipe), progress=False)
    sft, rl = result.stages
    assert Run(rl.run_dir).config()["max_seconds"] == pytest.approx(sft.train_seconds)
    assert rl.steps < 200  # stopped by the time budget, not by max_steps
    assert any(e["event"] == "budget" for e in Run(rl.run_dir).events())


@pytest.mark.parametrize("stages, pattern", [
    ([{"name": "a", "kind": "ppo"}], r"unknown kind 'ppo'.*sft, grpo, sample"),
    ([{"name": "a", "kind": "sft", "epoch": 1}], r"'epoch' \(did you mean 'epochs'\?\)"),
    ([{"name": "a", "kind": "grpo", "from": "b"}], r"from 'b' is not an earlier stage"),
    ([{"name": "a", "kind": "sft", "data": "stage:x"}], r"data 'stage:x' names no earlier stage"),
    ([{"name": "a", "kind": "sample", "kk": 2}], r"unknown config key.*'kk'"),
    ([{"name": "a", "kind": "sft"}, {"name": "a", "kind": "grpo"}], r"'a' appears twice"),
    ([], r"non-empty 'stages'"),
    ([{"name": "s", "kind": "sample"}, {"name": "g", "kind": "grpo", "budget_from": "s"}],
     r"budget_from 's' is not an earlier sft or grpo stage"),
])
def test_bad_recipes_name_the_problem(stages, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_recipe({"name": "x", "defaults": TINY, "stages": stages})


def test_distill_recipe_runs_in_smoke_mode(tmp_path):
    recipe = smoke_recipe(load_recipe(CONFIGS / "r1_pipeline_distill.yaml", runs_root=str(tmp_path)))
    result = run_pipeline(recipe, progress=False)
    s = {st.name: st for st in result.stages}
    assert s["teacher_samples"].start_model == s["teacher_rl"].policy
    assert s["distill_sft"].start_model == s["student_grpo"].start_model == "tiny-random"
    assert Run(s["student_grpo"].run_dir).config()["max_seconds"] == pytest.approx(s["distill_sft"].train_seconds)


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_shipped_recipes_parse_and_every_stage_config_builds(path):
    from workbench.config import SFTStageConfig, WorkbenchConfig

    recipe = load_recipe(path)
    assert recipe.stages
    for stage in recipe.stages:
        settings = recipe.settings(stage)
        if stage.kind == "sft":
            SFTStageConfig.from_dict({**settings, "data": "coldstart:chain_sum"})
        elif stage.kind == "grpo":
            WorkbenchConfig.from_dict(settings)
