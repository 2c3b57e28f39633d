"""WorkbenchConfig: kwargs, YAML + CLI overrides, validation, and the GRPOConfig it derives."""

from pathlib import Path

import pytest

from workbench.config import ConfigError, WorkbenchConfig, parse_cli, to_grpo_config

# Single-run GRPO recipes; the multi-stage ones (r1_pipeline_*.yaml) are tested in test_pipeline.py,
# the SFT ones (sft_*.yaml) in test_sft.py.
CONFIGS = sorted(p for p in (Path(__file__).parent.parent / "configs").glob("*.yaml")
                 if not p.name.startswith(("r1_pipeline_", "sft_")))


def test_kwargs_and_round_trip(tmp_path):
    cfg = WorkbenchConfig(task="countdown", max_steps=7, rewards={"accuracy": 1.0, "format": 0.5})
    cfg.to_yaml(tmp_path / "c.yaml")
    back = WorkbenchConfig.from_yaml(tmp_path / "c.yaml")
    assert back == cfg
    assert back.rewards == {"accuracy": 1.0, "format": 0.5}


def test_cli_flags_that_scripts_rely_on(tmp_path):
    cfg = parse_cli(["--model", "tiny-random", "--task", "chain_sum", "--max_steps", "3",
                     "--runs_root", str(tmp_path), "--run_name", "r1"])
    assert (cfg.model, cfg.task, cfg.max_steps, cfg.runs_root, cfg.run_name) == (
        "tiny-random", "chain_sum", 3, str(tmp_path), "r1")


def test_yaml_recipe_with_cli_override(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: countdown\nmax_steps: 50\nrewards:\n  accuracy: 1.0\n  tags: 0.25\n")
    cfg = parse_cli(["--config", str(recipe), "--max_steps", "5", "--rewards", "accuracy=2,format=0.5"])
    assert cfg.task == "countdown"
    assert cfg.max_steps == 5  # the flag beats the file
    assert cfg.rewards == {"accuracy": 2.0, "format": 0.5}


def test_yaml_dict_values_survive(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("rewards:\n  accuracy: 1.0\n  tags: 0.25\ntask_kwargs:\n  min_digits: 2\n")
    cfg = parse_cli(["--config", str(recipe)])
    assert cfg.rewards == {"accuracy": 1.0, "tags": 0.25}
    assert cfg.task_kwargs == {"min_digits": 2}


def test_unknown_cli_key_names_it_with_a_hint():
    with pytest.raises(ConfigError, match=r"max_step.*did you mean 'max_steps'"):
        parse_cli(["--max_step", "3"])


def test_unknown_yaml_key_names_it(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learnin_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"learnin_rate.*did you mean 'learning_rate'"):
        parse_cli(["--config", str(recipe)])
    with pytest.raises(ConfigError, match="learnin_rate"):
        WorkbenchConfig.from_yaml(recipe)


@pytest.mark.parametrize("changes, pattern", [
    ({"num_generations": 5}, r"num_generations \(5\) must divide.*32"),
    ({"loss_type": "ppo"}, r"loss_type 'ppo'.*dapo"),
    ({"scale_rewards": "yes"}, r"scale_rewards 'yes'.*group"),
    ({"rewards": {"acuracy": 1.0}}, r"acuracy.*accuracy"),
    ({"template": "nope"}, r"template 'nope'.*r1_zero"),
    ({"precision": "int3"}, r"precision 'int3'.*fp32"),
    ({"temperature": 0}, "temperature"),
    ({"max_steps": 0}, "max_steps"),
    ({"rewards": "accuracy=high"}, "not a number"),
])
def test_bad_values_fail_fast(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        WorkbenchConfig(**changes)


def test_bad_type_on_cli_fails():
    # One line naming the flag, not argparse's 30 lines of usage and its SystemExit.
    with pytest.raises(ConfigError, match="--max_steps.*invalid int value: 'many'; see workbench train --help"):
        parse_cli(["--max_steps", "many"])


def test_grpo_config_against_installed_trl(tmp_path):
    cfg = WorkbenchConfig(num_generations=4, per_device_train_batch_size=8, beta=0.001, epsilon_high=0.28,
                          loss_type="dr_grpo", scale_rewards="none", learning_rate=1e-5, temperature=0.7)
    args = to_grpo_config(cfg, tmp_path, reward_weights=[1.0])
    assert args.num_generations == 4
    assert args.per_device_train_batch_size == 8
    assert args.beta == 0.001 and args.epsilon_high == 0.28 and args.epsilon == 0.2
    assert args.loss_type == "dr_grpo" and args.scale_rewards == "none"
    assert args.learning_rate == 1e-5 and args.temperature == 0.7
    assert args.gradient_checkpointing is False
    assert args.max_completion_length == cfg.max_completion_length
    assert args.logging_steps == 1


@pytest.mark.parametrize("recipe", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_recipe_builds(recipe, tmp_path):
    cfg = WorkbenchConfig.from_yaml(recipe)
    to_grpo_config(cfg, tmp_path)


def test_demo_recipe_is_the_default():
    # `workbench demo` runs the defaults; configs/demo.yaml documents them and must not drift.
    assert WorkbenchConfig.from_yaml(Path(__file__).parent.parent / "configs" / "demo.yaml") == WorkbenchConfig()
