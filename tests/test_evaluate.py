"""Greedy evaluation is immune to the state GRPOTrainer.train() leaves a model in."""

import torch
from peft import LoraConfig, get_peft_model

from workbench.analysis.evaluate import evaluate_accuracy
from workbench.models import TINY_MODEL, load_model, resolve_precision
from workbench.tasks import get_task
from workbench.templates import render_prompt


def test_eval_after_training_state_equals_eval_in_eval_mode():
    torch.manual_seed(0)
    model, tok = load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))
    # Random (not zero) LoRA B and heavy dropout: train mode would change every greedy answer.
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=64, lora_dropout=0.5, target_modules="all-linear",
                                             init_lora_weights=False, task_type="CAUSAL_LM"))
    task = get_task("chain_sum")
    items = task.items("eval", 8)
    prompts = [render_prompt("chat_concise", it["question"], tok) for it in items]

    model.eval()
    reference = evaluate_accuracy(model, tok, task, items, prompts, max_new_tokens=8, progress=False)

    # What train() leaves behind: train mode, gradient checkpointing on, KV cache off.
    model.train()
    model.get_base_model().gradient_checkpointing_enable()
    model.config.use_cache = False
    after = evaluate_accuracy(model, tok, task, items, prompts, max_new_tokens=8, progress=False)

    assert [r["completion"] for r in after["items"]] == [r["completion"] for r in reference["items"]]
    assert any(r["completion"] for r in reference["items"])
    # ...and the model is handed back in the state it came in.
    assert model.training and model.get_base_model().is_gradient_checkpointing and not model.config.use_cache
