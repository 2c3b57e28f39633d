"""GRPO end to end on the tiny random model: real TRL trainer, real verifier, complete run directory."""

import json

import pytest
from safetensors.torch import load_file

from workbench import WorkbenchConfig, train
from workbench.analysis import traces
from workbench.rewards import extract_answer
from workbench.runlog import Run
from workbench.tasks import get_task

STEPS, G, BATCH = 2, 4, 8


class EvenTokenShare:
    """A reward with spread on random text (the verifier gives a random model 0 everywhere, so
    without this every advantage would be 0 and nothing would train)."""

    __name__ = "even_tokens"

    def __call__(self, completions, completion_ids, **kwargs):
        return [sum(t % 2 == 0 for t in ids) / max(len(ids), 1) for ids in completion_ids]


class FlakyReward:
    """Raises on about a third of completions (decided by their tokens, so a per-sample retry fails
    the same way): the run must go on, and the error must be logged and counted."""

    __name__ = "flaky"

    def __call__(self, completions, completion_ids, **kwargs):
        if any(sum(ids) % 3 == 0 for ids in completion_ids):
            raise RuntimeError("boom")
        return [0.0] * len(completions)


def tiny_cfg(tmp_path, **kw):
    base = dict(model="tiny-random", task="chain_sum", max_steps=STEPS, num_generations=G,
                per_device_train_batch_size=BATCH, max_completion_length=8, eval_items=8, eval_batch_size=8,
                runs_root=str(tmp_path), run_name="tiny", rewards={"accuracy": 1.0, "tags": 0.5},
                learning_rate=1e-2)
    base.update(kw)
    return WorkbenchConfig(**base)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = tiny_cfg(tmp_path_factory.mktemp("runs"))
    result = train(cfg, progress=False, reward_funcs=[EvenTokenShare(), FlakyReward()])
    return cfg, result, Run(result.run_dir)


def test_lora_parameters_changed(tiny_run):
    _, result, run = tiny_run
    weights = load_file(run.adapter_dir / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b, "no LoRA B matrices saved"
    # PEFT initialises B to zero; training moved them.
    assert any(v.abs().sum() > 0 for v in lora_b)


def test_run_directory_is_complete_and_consistent(tiny_run):
    cfg, result, run = tiny_run
    assert WorkbenchConfig.from_dict(run.config()) == cfg

    metrics = run.metrics()
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    for m in metrics:
        for key in ("reward_mean", "reward_std", "rewards/accuracy/mean", "rewards/tags/mean", "accuracy",
                    "completion_length_mean", "completion_length_max", "truncation_rate", "entropy",
                    "learning_rate", "step_seconds", "generated_tokens_per_s", "reward_errors/flaky"):
            assert m.get(key) is not None, f"metrics line lacks {key}: {m}"
        assert "kl" in m  # null with beta=0 (no reference pass), by design
        assert m["reward_errors/flaky"] > 0

    rollouts = run.rollouts()
    assert len(rollouts) == STEPS * BATCH
    assert sorted({r["step"] for r in rollouts}) == list(range(1, STEPS + 1))
    task = get_task("chain_sum", seed=cfg.seed)
    for step in range(1, STEPS + 1):
        rows = run.rollouts(step=step)
        groups = {}
        for r in rows:
            groups.setdefault(r["group"], []).append(r)
        assert len(groups) == BATCH // G and all(len(g) == G for g in groups.values())
        for g in groups.values():
            assert len({r["prompt_id"] for r in g}) == 1  # a group shares its prompt
            assert sorted(r["index"] for r in g) == list(range(G))
            assert abs(sum(r["advantage"] for r in g)) < 1e-3  # group-normalised
    for r in rollouts:
        assert set(r["rewards"]) == {"accuracy", "tags", "even_tokens", "flaky"}
        assert r["tokens"] <= cfg.max_completion_length and isinstance(r["truncated"], bool)
        assert r["traces"] == traces.tag(r["completion"], prompt=r["prompt"])  # tagged as logged
        # The logged accuracy is the real verifier's verdict on the logged text.
        item = next(it for it in task.items("train", STEPS * BATCH // G) if it["id"] == r["prompt_id"])
        assert r["rewards"]["accuracy"] == task.score(extract_answer(r["completion"], task.answer_kind), item)
    flaky = [r["rewards"]["flaky"] for r in rollouts]
    assert None in flaky and 0.0 in flaky  # failed samples got no reward, the others kept theirs

    events = run.events()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and events[-1]["status"] == "finished"
    assert {"eval", "checkpoint"} <= set(kinds)
    assert any(e["event"] == "error" and e.get("reward") == "flaky" for e in events)
    evals = run.evals()
    assert evals["before"]["n"] == evals["after"]["n"] == 8
    assert run.status() == "finished"
    assert result.before["n"] == 8 and result.after is not None


def test_eval_after_training_unchanged_model_equals_before(tmp_path):
    # lr=0 leaves the model unchanged; eval after train() must then reproduce eval before exactly,
    # through the real trainer. (LoRA B stays 0 here, so dropout cannot show: tests/test_evaluate.py
    # checks the train-mode / checkpointing / no-cache state with non-zero adapters.)
    cfg = tiny_cfg(tmp_path, learning_rate=0.0, max_steps=1, save_adapter=False, lora_dropout=0.5)
    result = train(cfg, progress=False, reward_funcs=[EvenTokenShare()])
    before = [r["completion"] for r in result.before["items"]]
    after = [r["completion"] for r in result.after["items"]]
    assert before == after
    assert any(before)  # the model generated something to compare


@pytest.mark.parametrize("raised, status", [(SystemExit, "crashed"), (KeyboardInterrupt, "interrupted")])
def test_crash_is_recorded(tmp_path, raised, status):
    class Boom:
        __name__ = "boom"

        def __call__(self, completions, **kw):
            raise raised  # not an Exception: SafeReward lets it through (KeyboardInterrupt: a second Ctrl-C)

    cfg = tiny_cfg(tmp_path, max_steps=1, eval_items=0)
    with pytest.raises(raised):
        train(cfg, progress=False, reward_funcs=[Boom()])
    run = Run(tmp_path / "tiny")
    assert run.status() == status
    assert run.events()[-1]["event"] == "end"


def test_qlora_4bit_branch_trains_on_cpu(tmp_path):
    pytest.importorskip("bitsandbytes")
    cfg = tiny_cfg(tmp_path, max_steps=1, eval_items=0, quantization="4bit", precision="fp32")
    result = train(cfg, progress=False, reward_funcs=[EvenTokenShare()])
    run = Run(result.run_dir)
    assert json.loads((run.adapter_dir / "adapter_config.json").read_text())["r"] == cfg.lora_r
    weights = load_file(run.adapter_dir / "adapter_model.safetensors")
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)
    assert run.events()[0]["precision"]["quantization"] == "4bit"
    setup = next(e for e in run.events() if e["event"] == "setup")
    assert setup["quantized_modules"] > 0  # the base linears really were bitsandbytes 4-bit layers


def test_rollouts_and_evaluation_end_at_stop_strings(tmp_path):
    # Stops a random model writes often: a space-led token or a "?" ends a rollout within a few tokens.
    stops = [" ", "?"]
    cfg = tiny_cfg(tmp_path, max_steps=1, eval_items=4, save_adapter=False, stop=stops)
    run = Run(train(cfg, progress=False, reward_funcs=[EvenTokenShare()]).run_dir)
    setup = next(e for e in run.events() if e["event"] == "setup")
    assert setup["stop"] == stops
    rollouts = run.rollouts()
    assert len(rollouts) == BATCH
    ended = [r for r in rollouts if not r["truncated"]]
    assert ended and all(r["tokens"] < cfg.max_completion_length for r in ended)
    # An ended rollout stopped at a stop string (the token that completes one may run past it).
    assert all(any(s in r["completion"] for s in stops) for r in ended)
    # Every rollout of a batch that all stopped early ended, the last to stop included (an EOS is added).
    if max(r["tokens"] for r in rollouts) < cfg.max_completion_length:
        assert len(ended) == len(rollouts)
    evaluated = next(e for e in run.events() if e["event"] == "eval")["items"]
    assert all(any(s in it["completion"] for s in stops) or it["truncated"] for it in evaluated)


def test_stopping_generation_adds_an_eos_only_when_every_row_ended_early():
    # transformers ends generation early only when every row has finished; the last rows to stop at
    # a stop string then have no EOS after them, and TRL's mask would read them as clipped.
    import torch
    from types import SimpleNamespace

    from workbench.analysis.evaluate import stopping_generation

    tok = SimpleNamespace(eos_token_id=2)
    prompt = torch.tensor([[7, 8], [7, 9]])
    outputs = {}

    class Model:
        def generate(self, input_ids=None, **kwargs):
            outputs["kwargs"] = kwargs
            return torch.cat([input_ids, outputs["new"]], dim=1)

    model = Model()
    with stopping_generation(model, tok):
        outputs["new"] = torch.tensor([[5, 2, 2], [5, 6, 4]])  # row 1 stopped at a string in its last step
        out = model.generate(input_ids=prompt, max_new_tokens=8)
        assert out[:, 2:].tolist() == [[5, 2, 2, 2], [5, 6, 4, 2]]
        assert outputs["kwargs"]["tokenizer"] is tok
        budget = SimpleNamespace(max_new_tokens=3)  # the budget from the generation config, reached
        assert model.generate(input_ids=prompt, generation_config=budget)[:, 2:].tolist() == [[5, 2, 2], [5, 6, 4]]
    assert "generate" not in vars(model)  # the class's method again
