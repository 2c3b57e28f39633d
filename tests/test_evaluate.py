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


def test_generation_ends_right_after_a_stop_string_and_other_rows_go_on():
    from workbench.analysis.evaluate import generate

    torch.manual_seed(0)
    model, tok = load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))
    prompts = ["What is 2 + 3?", "Hello there, what"]
    free = generate(model, tok, prompts, 16, progress=False)
    ids = tok(free[1]["completion"], add_special_tokens=False)["input_ids"]
    stop = tok.decode(ids[8:10])  # two tokens from the middle of row 1's greedy completion
    assert stop and stop not in free[0]["completion"]
    # transformers matches a stop string against prompt + completion: where it first ends there.
    end = (prompts[1] + free[1]["completion"]).find(stop) + len(stop) - len(prompts[1])
    assert 0 < end < len(free[1]["completion"])

    got = generate(model, tok, prompts, 16, progress=False, stop=(stop,))
    assert got[1]["completion"] == free[1]["completion"][:end]
    assert not got[1]["truncated"] and got[1]["tokens"] < 16  # the string's tokens and one EOS
    assert got[0] == free[0]  # a row that never writes it is untouched


def test_evaluation_tokenizes_prompts_as_grpo_training_does():
    # TRL's GRPOTrainer tokenizes a text prompt with the tokenizer's own special tokens
    # (processing_class(text=prompts)); Gemma needs its BOS, and without it answered differently.
    # A tokenizer that adds a BOS: evaluation must hand generate exactly TRL's ids.
    from tokenizers.processors import TemplateProcessing

    from workbench.analysis.evaluate import generate

    model, tok = load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))
    bos = tok.bos_token or tok.eos_token
    tok._tokenizer.post_processor = TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tok.convert_tokens_to_ids(bos))])
    prompts = ["What is 2 + 3?"]
    trl_ids = tok(text=prompts)["input_ids"][0]
    assert trl_ids[0] == tok.convert_tokens_to_ids(bos)  # the stand-in really adds one
    seen = []
    original = model.generate
    model.generate = lambda **kw: (seen.append(kw["input_ids"][0].tolist()), original(**kw))[1]
    generate(model, tok, prompts, 2, progress=False)
    assert seen == [trl_ids]
