"""Supervised fine-tuning: R1's cold start, its second SFT on rejection-sampled data, distillation.

    from workbench.config import SFTStageConfig
    from workbench.stages.sft import sft
    result = sft(SFTStageConfig(data="coldstart:chain_sum", epochs=1))   # or: workbench sft --data ...
    result.before["accuracy"], result.after["accuracy"]                  # held-out, greedy, same items

TRL's SFTTrainer, with the model set up exactly as GRPO training sets it up (LoRA on CPU, QLoRA on
CUDA, workbench.models' precision policy). The data are JSONL rows in workbench.stages.sft_data's format:
a conversation ({"messages": [...]}, ending with the assistant's reply) or a {"prompt",
"completion"} pair of strings. A conversation becomes TRL's conversational prompt-completion row
(prompt = every turn before the last, completion = the final assistant turn), so

- the loss covers the assistant's reply only (``completion_only_loss``), as in R1's SFT, and
- the prompt is rendered by the tokenizer's chat template with the generation prompt, exactly the
  text GRPO and evaluation render for the same system prompt and question (workbench.templates).

The run directory is an ordinary run (workbench.runlog) with ``stage: sft`` in config.yaml:
metrics.jsonl has the loss and token accuracy per step, events.jsonl the held-out greedy accuracy
before and after, adapter/ the LoRA adapter. The app opens it like any other run.
"""

from __future__ import annotations

from pathlib import Path

from workbench.config import SFTStageConfig, to_sft_config
from workbench.errors import WorkbenchError
from workbench.lifecycle import Stage, TrainResult, make_runlog_callback

COLDSTART = "coldstart:"
DATA_DIR = Path(__file__).resolve().parent / "data"


def shipped_cold_start_sets() -> list[str]:
    """Task names with a cold-start set shipped in the package (``coldstart:<task>``)."""
    return sorted(p.stem.removeprefix("cold_start_") for p in DATA_DIR.glob("cold_start_*.jsonl"))


def resolve_data_source(source: str) -> Path:
    """A data source as a file: ``coldstart:<task>`` is the shipped cold-start set, else a JSONL path."""
    if source.startswith(COLDSTART):
        task = source[len(COLDSTART):]
        path = DATA_DIR / f"cold_start_{task}.jsonl"
        if not path.is_file():
            raise WorkbenchError(
                f"no shipped cold-start set for task {task!r}; shipped: "
                f"{', '.join(COLDSTART + t for t in shipped_cold_start_sets()) or 'none'} "
                "(build one with `workbench coldstart --task NAME --output FILE.jsonl`)")
        return path
    path = Path(source)
    if not path.is_file():
        raise WorkbenchError(f"SFT data file {source!r} not found; give a JSONL path or 'coldstart:<task>'")
    return path


def load_sft_rows(sources: list[str]) -> list[dict]:
    """Every row of every source, validated (a row without an assistant reply is an error naming its line)."""
    from workbench.stages.sft_data import read_sft_jsonl

    rows = []
    for source in sources:
        rows += read_sft_jsonl(resolve_data_source(source))
    if not rows:
        raise WorkbenchError(f"the SFT data {sources} hold no rows")
    return rows


def to_trl_rows(rows: list[dict], template: str | None = None, tokenizer=None) -> list[dict]:
    """workbench.stages.sft_data rows -> TRL prompt-completion rows (conversational or plain text).

    With a plain-text ``template`` (``r1_zero``, ``plain``: a base model's, no chat template), a
    conversation becomes the text that template renders for its last user turn, and the reply its
    completion (after one space, as the model continues "Assistant:"): the prompt GRPO and
    evaluation show that model, so R1's cold start and second SFT can start from a base model.
    Raises WorkbenchError for a mix of conversation and text rows."""
    from workbench.templates import PLAIN_TEXT_TEMPLATES, render_prompt

    out, kinds = [], set()
    for row in rows:
        if "messages" in row and template in PLAIN_TEXT_TEMPLATES:
            question = next((m["content"] for m in reversed(row["messages"][:-1]) if m["role"] == "user"), None)
            if question is None:
                raise WorkbenchError(f"template {template!r} shows the model a question, and a conversation row "
                                     "has no user turn")
            reply = row["messages"][-1]["content"]
            out.append({"prompt": render_prompt(template, question, tokenizer),
                        "completion": reply if reply[:1].isspace() else " " + reply})
            kinds.add("text")
        elif "messages" in row:
            msgs = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
            out.append({"prompt": msgs[:-1], "completion": msgs[-1:]})
            kinds.add("conversation")
        else:
            out.append({"prompt": row["prompt"], "completion": row["completion"]})
            kinds.add("text")
    if len(kinds) > 1:
        # One dataset has one schema, and the two kinds are tokenized differently.
        raise WorkbenchError("the SFT data mix conversation rows ({'messages'}) and text rows ({'prompt', "
                             "'completion'}); use one kind per stage")
    return out


def _sft_record(logs: dict, trainer, callback) -> dict:
    return {
        "step": trainer.state.global_step,
        "loss": logs.get("loss"),
        "token_accuracy": logs.get("mean_token_accuracy"),
        "entropy": logs.get("entropy"),
        "grad_norm": logs.get("grad_norm"),
        "learning_rate": logs.get("learning_rate"),
        "step_seconds": getattr(callback, "_step_seconds", None),
    }


def sft(cfg: SFTStageConfig | None = None, progress: bool = True, run_info: dict | None = None,
        before: dict | None = None, **overrides) -> TrainResult:
    """Fine-tune ``cfg.model`` on ``cfg.data`` with LoRA; evaluate on held-out items before and after.

    ``before``: this model's held-out result computed already (the pipeline passes the previous
    stage's "after", same items), recorded instead of evaluating again.
    """
    from datasets import Dataset
    from trl import SFTTrainer

    cfg = (cfg or SFTStageConfig()).replace(**overrides) if overrides else (cfg or SFTStageConfig())
    rows = load_sft_rows(cfg.data_sources())  # bad data fails here, before a run directory exists
    stage = Stage(cfg, "sft", run_info)
    writer = stage.writer
    try:
        model, tokenizer = stage.load()
        dataset = Dataset.from_list(to_trl_rows(rows, stage.template, tokenizer))
        trainer_ref: list = []
        trainer = SFTTrainer(
            model=model,
            args=to_sft_config(cfg, writer.path / "trainer", precision=stage.precision, disable_tqdm=not progress),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=stage.lora(),
            callbacks=[make_runlog_callback(writer, trainer_ref, record=_sft_record, max_seconds=cfg.max_seconds)],
        )
        trainer_ref.append(trainer)
        return stage.run(trainer, tokenizer, cfg.eval_max_new_tokens or 128, progress, before,
                         train_rows=len(dataset), data=cfg.data_sources())
    except BaseException as e:
        stage.crashed(e)
        raise
    finally:
        writer.close()
