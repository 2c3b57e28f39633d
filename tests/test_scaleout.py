"""Scale-out without the hardware: vLLM's config mapping and its rollout path (TRL's own vLLM branch,
fed by a stand-in engine, since vLLM cannot run on these CPUs), the shipped accelerate configs,
report_to tensorboard offline, and cost accounting. The two-process run is tests/test_distributed.py."""

import math
from pathlib import Path

import pytest

from workbench import cost
from workbench.config import ConfigError, WorkbenchConfig, to_grpo_config
from workbench.grpo.trainer import end_stopped_rows, stop_generation_kwargs
from workbench.models import load_tokenizer

ROOT = Path(__file__).resolve().parent.parent


def test_vllm_keys_map_into_trls_grpo_config(tmp_path):
    cfg = WorkbenchConfig(use_vllm=True, vllm_mode="server", vllm_server_base_url="http://10.0.0.5:8000",
                          vllm_gpu_memory_utilization=0.5, vllm_tensor_parallel_size=2)
    args = to_grpo_config(cfg, tmp_path)
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url) == (True, "server", "http://10.0.0.5:8000")
    assert (args.vllm_gpu_memory_utilization, args.vllm_tensor_parallel_size) == (0.5, 2)
    assert to_grpo_config(WorkbenchConfig(), tmp_path).use_vllm is False


@pytest.mark.parametrize("kw, named", [({"vllm_mode": "remote"}, "colocate, server"),
                                       ({"vllm_gpu_memory_utilization": 1.5}, "(0, 1]")])
def test_bad_vllm_settings_are_one_line(kw, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace("]", r"\]")):
        WorkbenchConfig(**kw)


def test_use_vllm_without_vllm_fails_before_a_run_directory(tmp_path):
    from workbench import train

    with pytest.raises(ConfigError, match="use_vllm: true needs"):
        train(WorkbenchConfig(model="tiny-random", use_vllm=True, runs_root=str(tmp_path), run_name="x"))
    assert not (tmp_path / "x").exists()


def test_stop_strings_in_vllms_terms():
    tok = load_tokenizer("tiny-random")
    assert stop_generation_kwargs(("</answer>",), tok, use_vllm=True) == {
        "stop": ["</answer>"], "include_stop_str_in_output": True}
    assert stop_generation_kwargs(("</answer>",), tok)["stop_strings"] == ["</answer>"]
    assert stop_generation_kwargs((), tok, use_vllm=True) is None


def test_rows_vllm_ended_at_a_stop_string_get_one_eos():
    tok = load_tokenizer("tiny-random")
    eos = tok.eos_token_id
    stopped = tok.encode("<answer>7</answer>")
    rows = [stopped, stopped + [eos], tok.encode("<answer>7"), tok.encode("x </answer>")[:3]]
    logps = [[-0.5] * len(r) for r in rows]
    ids, out = end_stopped_rows(rows, logps, ("</answer>",), tok, budget=64)
    assert ids[0] == stopped + [eos] and math.isnan(out[0][-1]) and out[0][:-1] == logps[0]
    assert ids[1:] == rows[1:] and out[1:] == logps[1:]  # already ended / not stopped: untouched
    at_budget, _ = end_stopped_rows([stopped], None, ("</answer>",), tok, budget=len(stopped))
    assert at_budget == [stopped]  # a row at the budget was clipped, whatever its text


class StandInVLLM:
    """What TRL's vLLM engine returns for a batch (VLLMGeneration.generate): one completion per prompt
    row, per-token top-1 log-probs, ending at a stop string without EOS. No model runs."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls, self.synced = tokenizer, 0, 0

    def sync_weights(self):
        self.synced += 1

    def generate(self, prompts, images, num_generations, profiler=None):
        self.calls += 1
        texts = [f"<think>{i} + 1</think> <answer>{i % 3}</answer>" for i in range(len(prompts))]
        ids = [self.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        return prompts, ids, [[[-0.25] for _ in row] for row in ids], None


def test_rollout_logger_on_trls_vllm_path_with_a_stand_in_engine(tmp_path):
    """One GRPO step through TRL's vLLM branch (use_vllm, stop strings in vLLM's terms), the engine a
    stand-in: every rollout is logged with its text, its EOS after the stop string (ended, not
    clipped) and rewards that re-score the logged text."""
    from workbench.grpo.trainer import build_dataset, make_trainer_class
    from workbench.models import load_model, resolve_precision
    from workbench.rewards import build_rewards
    from workbench.runlog import Run, RunWriter
    from workbench.tasks import get_task

    cfg = WorkbenchConfig(model="tiny-random", task="chain_sum", max_steps=1, num_generations=4,
                          per_device_train_batch_size=8, max_completion_length=32, template="r1_zero",
                          rewards={"accuracy": 1.0, "format": 0.5}, runs_root=str(tmp_path))
    precision = resolve_precision("auto", "auto")
    model, tok = load_model("tiny-random", precision)
    task = get_task("chain_sum", seed=0)
    funcs, weights = build_rewards(cfg.rewards, task, cfg.max_completion_length)
    writer = RunWriter.create(tmp_path, "vllm")
    from workbench.models import lora_config

    trainer = make_trainer_class()(
        model=model, reward_funcs=funcs, processing_class=tok,
        args=to_grpo_config(cfg, tmp_path / "trainer", precision=precision, reward_weights=weights,
                            disable_tqdm=True, generation_kwargs=stop_generation_kwargs(("</answer>",), tok, True)),
        train_dataset=build_dataset(task, 2, "r1_zero", tok), peft_config=lora_config(4, 8, 0.0, "all-linear"))
    engine = StandInVLLM(tok)
    # TRL's vLLM branch with the engine swapped in (building the real one imports vLLM).
    trainer.use_vllm, trainer.vllm_generation, trainer._last_loaded_step = True, engine, -1
    trainer.run_writer = writer
    trainer.train()
    writer.close()
    assert engine.calls == 1 and engine.synced >= 1
    rollouts = Run(writer.path).rollouts()
    assert len(rollouts) == 8
    items = {it["id"]: it for it in task.items("train", 2)}
    from workbench.rewards.extract import extract_answer, r1_format_ok

    for r in rollouts:
        assert r["completion"].endswith("</answer>") and r["truncated"] is False
        assert r["tokens"] == len(tok.encode(r["completion"], add_special_tokens=False)) + 1  # + the EOS
        assert r["rewards"]["accuracy"] == task.score(extract_answer(r["completion"], task.answer_kind),
                                                      items[r["prompt_id"]])
        assert r["rewards"]["format"] == (1.0 if r1_format_ok(r["completion"]) else 0.0)
    assert trainer.state.log_history[0]["completions/clipped_ratio"] == 0.0


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3", "fsdp2"])
def test_shipped_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import ClusterConfig

    path = ROOT / "configs" / "accelerate" / f"{name}.yaml"
    config = ClusterConfig.from_yaml_file(str(path))
    expected = {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp2": "FSDP"}[name]
    assert str(config.distributed_type).endswith(expected)
    assert config.mixed_precision == "no"  # the recipe's precision decides, not the launcher
    if name.startswith("zero"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])
    if name == "fsdp2":
        assert config.fsdp_config["fsdp_version"] == 2


def test_cost_of_a_cpu_run_and_of_a_resumed_gpu_run():
    start = {"event": "start", "time": 1000.0, "devices": {"type": "cpu", "name": "x", "count": 2, "unit": "core"}}
    events = [start, {"event": "end", "time": 1000.0 + 1800}]
    metrics = [{"time": 1100.0, "generated_tokens": 500, "num_tokens": 900},
               {"time": 1200.0, "generated_tokens": 700, "num_tokens": 1800}]
    c = cost.estimate(events, metrics, {})
    assert c["device_hours"] == pytest.approx(1.0) and c["cost_usd"] == pytest.approx(cost.CPU_CORE_HOUR_PRICE)
    assert (c["generated_tokens"], c["trained_tokens"]) == (1200, 1800)
    gpu = {**start, "devices": {"type": "cuda", "name": "H100", "count": 8, "unit": "GPU"}}
    # Killed after 1 h (last record at +3600), resumed 2 h later, ran 30 min more: 1.5 h of 8 GPUs.
    events = [gpu, {"event": "eval", "time": 4600.0}, {"event": "resume", "time": 12000.0},
              {"event": "end", "time": 13800.0}]
    c = cost.estimate(events, [], {"gpu_hour_price": 3.0})
    assert c["device_hours"] == pytest.approx(12.0) and c["cost_usd"] == pytest.approx(36.0)
    assert cost.estimate([{"event": "start", "time": 0.0}], [], {}) is None  # a run from before costs
    assert "core-hours" in cost.describe(cost.estimate([start, {"event": "end", "time": 4600.0}], [], {}))


def test_negative_price_is_refused():
    with pytest.raises(ConfigError, match="gpu_hour_price"):
        WorkbenchConfig(gpu_hour_price=-1)


def test_report_to_tensorboard_offline_gets_the_run_directorys_metrics(tmp_path):
    """report_to: tensorboard writes event files (no network) whose scalars are metrics.jsonl's."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from workbench import train
    from workbench.runlog import Run

    result = train(WorkbenchConfig(model="tiny-random", task="chain_sum", max_steps=2, num_generations=4,
                                   per_device_train_batch_size=4, max_completion_length=8, eval_items=0,
                                   report_to="tensorboard", runs_root=str(tmp_path), run_name="tb"), progress=False)
    files = list((Path(result.run_dir) / "trainer").rglob("events.out.tfevents.*"))
    assert files, "no tensorboard event file under the run's trainer/ directory"
    board = EventAccumulator(str(files[0].parent)).Reload()
    metrics = Run(result.run_dir).metrics()
    logged = [e.value for e in board.Scalars("train/reward")]
    assert logged == pytest.approx([m["reward_mean"] for m in metrics])
    assert [e.step for e in board.Scalars("train/reward")] == [m["step"] for m in metrics]


def test_launch_scripts_parse_and_pass_flags_workbench_train_knows():
    import re
    import subprocess

    from workbench.config import parse_cli

    for script in ("scripts/slurm/grpo_multinode.sbatch", "scripts/gpu_check.sh"):
        subprocess.run(["bash", "-n", str(ROOT / script)], check=True)
    text = (ROOT / "scripts/slurm/grpo_multinode.sbatch").read_text()
    default = re.search(r"ACCELERATE_CONFIG=\$\{ACCELERATE_CONFIG:-([^}]+)\}", text).group(1)
    assert (ROOT / default).is_file()
    cfg = parse_cli(["--use_vllm", "true", "--vllm_mode", "server", "--vllm_server_base_url", "http://node5:8000"])
    assert (cfg.use_vllm, cfg.vllm_mode, cfg.vllm_server_base_url) == (True, "server", "http://node5:8000")
