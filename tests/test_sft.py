"""The SFT stage on the tiny random model: it learns its data, logs a normal run, refuses bad data."""

import json

import pytest

from workbench.config import SFTStageConfig
from workbench.errors import WorkbenchError
from workbench.runlog import Run
from workbench.stages.sft import sft, to_trl_rows
from workbench.templates import render_prompt, system_prompt

ANSWER = "<think>\n3 + 4 = 7\n</think>\n<answer>7</answer>"
QUESTION = "What is 3 + 4?"


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _row(question=QUESTION, answer=ANSWER):
    return {"messages": [{"role": "system", "content": system_prompt("chat_think")},
                         {"role": "user", "content": question},
                         {"role": "assistant", "content": answer}],
            "provenance": {"source": "test"}}


def _reply_logprob(model, tok) -> float:
    """Mean log-probability per token of ANSWER after the chat_think prompt for QUESTION."""
    import torch

    prompt = render_prompt("chat_think", QUESTION, tok)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    r_ids = tok(ANSWER, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + r_ids])
    with torch.no_grad():
        logps = model(ids).logits.log_softmax(-1)[0, len(p_ids) - 1:-1]
    return logps.gather(-1, torch.tensor(r_ids)[:, None]).mean().item()


def test_sft_raises_the_reply_likelihood_and_logs_a_run(tmp_path):
    from peft import PeftModel

    from workbench.models import load_model, resolve_precision

    data = _write(tmp_path / "d.jsonl", [_row()] * 4)
    cfg = SFTStageConfig(model="tiny-random", data=data, runs_root=str(tmp_path / "runs"), run_name="sft",
                         max_steps=8, per_device_train_batch_size=4, learning_rate=3e-2, eval_items=2,
                         eval_max_new_tokens=4)
    result = sft(cfg, progress=False)
    run = Run(result.run_dir)
    assert run.status() == "finished" and run.config()["stage"] == "sft"
    metrics = run.metrics()
    assert [m["step"] for m in metrics] == list(range(1, 9))
    assert all(m["loss"] is not None and m["token_accuracy"] is not None for m in metrics)
    assert set(run.evals()) == {"before", "after"}
    assert result.steps == 8 and result.train_seconds > 0

    # The saved adapter makes the reply more likely. (The tiny model's tied, untrained 0.02-scale
    # output embedding caps its logits, so it cannot memorise outright: a likelihood rise is the test.)
    model, tok = load_model("tiny-random", resolve_precision("fp32", "none"), seed=0)
    before = _reply_logprob(model, tok)
    after = _reply_logprob(PeftModel.from_pretrained(model, run.adapter_dir), tok)
    assert after > before + 0.2, (before, after)


def test_prompt_is_not_a_target(tmp_path):
    rows = to_trl_rows([_row()])
    assert rows[0]["completion"] == [{"role": "assistant", "content": ANSWER}]
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]


def test_row_without_assistant_turn_fails_before_a_run_directory_exists(tmp_path):
    bad = _row()
    bad["messages"] = bad["messages"][:2]
    data = _write(tmp_path / "d.jsonl", [_row(), bad])
    with pytest.raises(WorkbenchError, match=r"d\.jsonl.*2"):
        sft(SFTStageConfig(model="tiny-random", data=data, runs_root=str(tmp_path / "runs"), run_name="x"),
            progress=False)
    assert not (tmp_path / "runs" / "x").exists()


def test_unknown_data_sources_name_the_choices(tmp_path):
    with pytest.raises(WorkbenchError, match=r"no shipped cold-start set for task 'nope'.*coldstart:chain_sum"):
        sft(SFTStageConfig(model="tiny-random", data="coldstart:nope", runs_root=str(tmp_path)), progress=False)
    with pytest.raises(WorkbenchError, match="not found"):
        sft(SFTStageConfig(model="tiny-random", data=str(tmp_path / "missing.jsonl"), runs_root=str(tmp_path)),
            progress=False)


def test_mixed_row_kinds_are_refused():
    with pytest.raises(WorkbenchError, match="mix conversation rows"):
        to_trl_rows([_row(), {"prompt": "2+2=", "completion": "4"}])


def test_time_budget_stops_training(tmp_path):
    data = _write(tmp_path / "d.jsonl", [_row()] * 8)
    cfg = SFTStageConfig(model="tiny-random", data=data, runs_root=str(tmp_path / "runs"), run_name="b",
                         max_steps=50, max_seconds=0.01, eval_items=0)
    result = sft(cfg, progress=False)
    assert result.steps == 1
    assert any(e["event"] == "budget" for e in Run(result.run_dir).events())


def test_shipped_sft_recipes_parse(tmp_path):
    from pathlib import Path

    from workbench.config import parse_cli, to_sft_config

    recipes = sorted((Path(__file__).parent.parent / "configs").glob("sft_*.yaml"))
    assert recipes
    for recipe in recipes:
        cfg = parse_cli(["--config", str(recipe), "--max_steps", "3"], SFTStageConfig)
        assert cfg.data_sources() and cfg.max_steps == 3
        assert to_sft_config(cfg, tmp_path).completion_only_loss


def test_only_the_reply_is_a_training_target(tmp_path):
    # The dataset SFTTrainer builds from our rows and config: the tokens its loss covers decode to
    # the assistant's reply (plus the end-of-turn token), never to the system prompt or question.
    from datasets import Dataset
    from trl import SFTTrainer

    from workbench.config import to_sft_config
    from workbench.models import load_model, resolve_precision

    model, tok = load_model("tiny-random", resolve_precision("fp32", "none"), seed=0)
    trainer = SFTTrainer(model=model, args=to_sft_config(SFTStageConfig(model="tiny-random"), tmp_path),
                         train_dataset=Dataset.from_list(to_trl_rows([_row()])), processing_class=tok)
    row = trainer.train_dataset[0]
    # TRL marks tokens outside the loss with label -100.
    target = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab != -100])
    assert target.startswith(ANSWER) and QUESTION not in target
    assert target[len(ANSWER):].strip() in (tok.eos_token, "<|im_end|>")
    prompt = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab == -100])
    assert prompt == render_prompt("chat_think", QUESTION, tok)  # what GRPO and evaluation render


def test_a_base_models_template_trains_on_the_text_grpo_shows_it(tmp_path):
    # With r1_zero (a base model's template), a conversation row is trained as R1-Zero's plain-text
    # prompt for its question; the loss covers the reply (and the end token) only.
    from datasets import Dataset
    from trl import SFTTrainer

    from workbench.config import to_sft_config
    from workbench.models import load_model, resolve_precision

    model, tok = load_model("tiny-random", resolve_precision("fp32", "none"), seed=0)
    rows = to_trl_rows([_row()], "r1_zero", tok)
    assert rows == [{"prompt": render_prompt("r1_zero", QUESTION, tok), "completion": " " + ANSWER}]
    trainer = SFTTrainer(model=model, args=to_sft_config(SFTStageConfig(model="tiny-random"), tmp_path),
                         train_dataset=Dataset.from_list(rows), processing_class=tok)
    row = trainer.train_dataset[0]
    prompt = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab == -100])
    target = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab != -100])
    assert prompt == render_prompt("r1_zero", QUESTION, tok)
    assert target.strip().startswith(ANSWER) and QUESTION not in target
    no_user = {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    with pytest.raises(WorkbenchError, match="no user turn"):
        to_trl_rows([no_user], "r1_zero", tok)
