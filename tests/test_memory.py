"""The loss's micro-batches: an estimate of its activations, and a split that keeps TRL's step the same."""

import pytest
from datasets import Dataset

from workbench.config import WorkbenchConfig, to_grpo_config
from workbench.grpo.memory import activation_bytes, loss_micro_batches
from workbench.grpo.trainer import fit_loss_in_memory
from workbench.models import TINY_MODEL, load_tokenizer, resolve_precision, tiny_config


@pytest.fixture(scope="module")
def embedded_shape():
    from transformers import LlamaConfig

    # SmolLM2-135M's shape, where the estimate was fitted: 8 rows x 257 tokens kept 3.21 GB for backward.
    return LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30)


def test_estimate_scales_with_rows_tokens_and_matches_the_measurement(embedded_shape):
    one = activation_bytes(embedded_shape, 8, 257)
    assert activation_bytes(embedded_shape, 16, 257) == 2 * one
    assert activation_bytes(embedded_shape, 8, 514) == 2 * one
    assert 2 * 3.0e9 < one < 2 * 3.5e9  # twice the measured saved tensors (PEAK_FACTOR)


def test_micro_batches_are_the_fewest_that_fit(embedded_shape):
    per_row = activation_bytes(embedded_shape, 1, 311)
    assert loss_micro_batches(embedded_shape, 32, 311, 100 * per_row) == 1
    assert loss_micro_batches(embedded_shape, 32, 311, 8 * per_row) == 4
    assert loss_micro_batches(embedded_shape, 32, 311, 7 * per_row) == 8  # 32 / 5..7 do not divide
    assert loss_micro_batches(embedded_shape, 32, 311, 0.5 * per_row) == 32  # nothing fits: one row each


def test_split_keeps_the_generation_batch(tmp_path):
    tok = load_tokenizer(TINY_MODEL)
    model = type("M", (), {"config": tiny_config(tok)})()
    cfg = WorkbenchConfig(model=TINY_MODEL, num_generations=4, per_device_train_batch_size=16)
    dataset = Dataset.from_list([{"prompt": "what is 2 + 3?"}] * 4)
    cpu = resolve_precision("fp32", "none", device="cpu")
    assert fit_loss_in_memory(cfg, cpu, model, tok, dataset, budget_bytes=1e12) == {}
    need = activation_bytes(model.config, 4, 20 + cfg.max_completion_length)
    micro = fit_loss_in_memory(cfg, cpu, model, tok, dataset, budget_bytes=need)
    assert micro == {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4}
    args = to_grpo_config(cfg, tmp_path, precision=cpu, use_cpu=True, **micro)
    assert args.generation_batch_size == 16 and args.steps_per_generation == 4  # one generation per step
    # A config that chose its own split, or checkpoints, is left alone.
    assert fit_loss_in_memory(cfg.replace(gradient_accumulation_steps=2, per_device_train_batch_size=8), cpu,
                              model, tok, dataset, budget_bytes=need) == {}


def test_memory_budget_env_caps_the_budget_and_a_bad_value_is_one_line(monkeypatch, tmp_path, capsys):
    from workbench.cli import main
    from workbench.grpo.memory import memory_budget_bytes

    monkeypatch.setenv("WORKBENCH_MEMORY_BUDGET_MB", "512")
    assert memory_budget_bytes() == 512 * 2 ** 20
    monkeypatch.setenv("WORKBENCH_MEMORY_BUDGET_MB", "lots")
    assert main(["train", "--model", "tiny-random", "--max_steps", "1", "--runs_root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "WORKBENCH_MEMORY_BUDGET_MB must be a positive number of megabytes, got 'lots'" in err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []  # no half-made run directory
