"""Rejection sampling (R1's stage 3): sample from a policy, keep only correct, readable answers as SFT data.

For each of ``n_questions`` distinct train questions, sample ``k`` completions (temperature 0.6,
top-p 0.95 by default, as R1 evaluates), and keep a completion only if the task's verifier gives it
full marks and it passes the readability filters; each kept one becomes an SFT row in
workbench.stages.sft_data's format (system prompt of the template, the question, the completion).

    workbench sample --model smollm2-135m-instruct --task chain_sum --n_questions 64 --k 4 --output kept.jsonl
    workbench sample --run runs/demo1 --run_name demo1-samples      # the run's policy, recorded as a run

    from workbench.stages.rejection_sampling import rejection_sample
    result = rejection_sample(model, tokenizer, get_task("chain_sum"), n_questions=64, k=4, max_new_tokens=256)
    result.rows, result.stats      # SFT rows; counts of samples, accepted, rejected by reason

Decisions:
- Gold answers are checked first: an item whose own gold answer the verifier does not score 1.0
  (an unparseable gold, e.g. a JSONL row whose answer math-verify cannot read) is counted in
  ``gold_parse_failures`` and not sampled. Otherwise every sample on it would count as "wrong"
  and the acceptance rate would blame the model for a broken item.
- Each rejected sample gets exactly one reason, the first failing check in ``REJECT_REASONS``
  order, so accepted + rejected by reason == samples. "truncated" comes first: an unfinished
  completion is no answer, whatever it contains. Then "wrong" (R1's first criterion), "format"
  (strict <think>...</think><answer>...</answer>, when ``require_format``), "language"
  (``language_consistency`` < ``min_language``: R1 dropped mixed-language CoTs), "length"
  (outside ``min_tokens``..``max_tokens``), and "duplicate" (the same whitespace-normalised
  completion already kept for this question). ``stats["failed"]`` also counts every check each
  sample fails, overlapping, for diagnosis ("how many were truncated at all?").
- Questions are distinct: repeats in a procedural train split are skipped, so no question is
  sampled twice and per-question dedup is global.
- ``sample_to_run`` records everything as a run directory (workbench.runlog) the app opens:
  rollouts.jsonl holds every candidate (step 0, the accuracy as its reward, plus "accepted" and
  "reject_reason"), events.jsonl a "sample_summary" with the stats, and data.jsonl the kept rows.
"""

from __future__ import annotations

import inspect
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from workbench.errors import WorkbenchError

GENERATOR = "workbench.stages.rejection_sampling"
REJECT_REASONS = ("truncated", "wrong", "format", "language", "length", "duplicate")
DATA = "data.jsonl"  # the run directory's kept SFT rows (beside runlog's files)


@dataclass(frozen=True)
class Filters:
    """What a correct sample must also satisfy to be kept (R1's "readable")."""

    require_format: bool = True
    min_language: float = 0.9
    language: str = "en"
    min_tokens: int = 1
    max_tokens: int | None = None  # None: no limit beyond max_new_tokens

    def __post_init__(self):
        from workbench.rewards.language import target_scripts

        target_scripts(self.language)  # an unknown language fails here, naming the valid ones
        if not 0.0 <= self.min_language <= 1.0:
            raise WorkbenchError(f"min_language must be in [0, 1], got {self.min_language}")
        if self.min_tokens < 0 or (self.max_tokens is not None and self.max_tokens < self.min_tokens):
            raise WorkbenchError(f"need 0 <= min_tokens <= max_tokens, got {self.min_tokens}, {self.max_tokens}")


def judge(completion: str, item: dict, task, *, tokens: int, truncated: bool, filters: Filters) -> dict:
    """Score one sample and say why it would be rejected.

    {"rewards": {"accuracy", "format", "language"}, "failed": [every failing check, in
    REJECT_REASONS order], "reason": the first of them or None}. Duplicates are the caller's check.
    """
    from workbench.rewards.extract import extract_answer
    from workbench.rewards.language import language_consistency
    from workbench.rewards.rules import FormatReward

    rewards = {
        "accuracy": task.score(extract_answer(completion, task.answer_kind), item),
        "format": FormatReward()([completion])[0],
        "language": language_consistency(completion, filters.language),
    }
    checks = {
        "truncated": truncated,
        "wrong": rewards["accuracy"] < 1.0,
        "format": filters.require_format and rewards["format"] < 1.0,
        "language": rewards["language"] < filters.min_language,
        "length": tokens < filters.min_tokens or (filters.max_tokens is not None and tokens > filters.max_tokens),
    }
    failed = [r for r in REJECT_REASONS if checks.get(r)]
    return {"rewards": rewards, "failed": failed, "reason": failed[0] if failed else None}


@dataclass
class SampleResult:
    rows: list[dict]  # kept SFT rows (workbench.stages.sft_data format)
    stats: dict
    records: list[dict] = field(default_factory=list)  # every candidate, in rollouts.jsonl's shape
    run_dir: str | None = None  # set by sample_to_run
    data_path: str | None = None  # the kept rows as JSONL (sample_to_run: <run_dir>/data.jsonl)


def _normalise(text: str) -> str:
    return " ".join(text.split())


def rejection_sample(model, tokenizer, task, *, template: str = "chat_think", n_questions: int = 64, k: int = 4,
                     max_new_tokens: int = 256, temperature: float = 0.6, top_p: float = 0.95, split: str = "train",
                     min_tokens: int = 1, max_tokens: int | None = None, require_format: bool = True,
                     min_language: float = 0.9, language: str = "en", provenance: dict | None = None,
                     batch_size: int = 32, progress: bool = True, seed: int | None = None,
                     stop: str | list = "auto") -> SampleResult:
    """Sample ``k`` completions for each of ``n_questions`` distinct ``split`` questions of ``task``
    and keep the correct, readable, distinct ones as SFT rows (module docstring).

    ``provenance`` (e.g. {"model", "adapter", "step"}) is copied into every row's provenance;
    ``seed`` seeds torch before sampling (None: leave the global RNG alone); ``stop``: where a
    sample ends besides EOS (``workbench.templates.stop_strings``: auto is the template's end of turn).
    """
    from workbench.analysis import traces
    from workbench.stages.cold_start import distinct_items
    from workbench.analysis.evaluate import generate
    from workbench.templates import render_prompt, resolve_template, stop_strings, system_prompt

    if n_questions < 1 or k < 1 or max_new_tokens < 1:
        raise WorkbenchError(f"n_questions, k and max_new_tokens must be >= 1; got {n_questions}, {k}, {max_new_tokens}")
    filters = Filters(require_format, min_language, language, min_tokens, max_tokens)
    template = resolve_template(template, tokenizer)
    system = system_prompt(template, tokenizer)
    t0 = time.time()

    drawn = distinct_items(task, n_questions, split)
    # An item whose own gold the verifier cannot score 1.0 would make every sample "wrong".
    usable = [(qi, item) for qi, item in enumerate(drawn) if task.score(item["answer"], item) >= 1.0]
    prompts = {qi: render_prompt(template, item["question"], tokenizer) for qi, item in usable}
    if seed is not None:
        import torch

        torch.manual_seed(seed)
    batch = [prompts[qi] for qi, _ in usable for _ in range(k)]  # each question's k samples side by side
    gens = generate(model, tokenizer, batch, max_new_tokens, batch_size=batch_size, do_sample=True,
                    temperature=temperature, top_p=top_p, progress=progress,
                    desc=f"sample {k} x {len(usable)}", stop=stop_strings(template, tokenizer, stop)) if batch else []

    base = {"source": "rejection_sampling", "generator": GENERATOR, "model": None, "adapter": None, "step": None,
            **(provenance or {})}
    rows, records = [], []
    rejected = dict.fromkeys(REJECT_REASONS, 0)
    failed = dict.fromkeys(REJECT_REASONS[:-1], 0)
    kept_questions = 0
    for u, (qi, item) in enumerate(usable):
        kept: set[str] = set()
        for j, gen in enumerate(gens[u * k:(u + 1) * k]):
            completion = gen["completion"]
            verdict = judge(completion, item, task, tokens=gen["tokens"], truncated=gen["truncated"], filters=filters)
            reason = verdict["reason"]
            if reason is None and _normalise(completion) in kept:
                reason = "duplicate"
            for r in verdict["failed"]:
                failed[r] += 1
            if reason is None:
                kept.add(_normalise(completion))
                messages = ([{"role": "system", "content": system}] if system else []) + [
                    {"role": "user", "content": item["question"]},
                    {"role": "assistant", "content": completion.strip()}]
                rows.append({"messages": messages, "provenance": {
                    **base, "task": task.name, "split": split, "item_id": item["id"], "sample_index": j,
                    "reward": verdict["rewards"]["accuracy"], "temperature": temperature, "top_p": top_p,
                    "template": template}})
            else:
                rejected[reason] += 1
            records.append({
                "step": 0, "prompt_id": item["id"], "prompt": prompts[qi], "answer": item["answer"],
                "group": qi, "index": j, "completion": completion, "tokens": gen["tokens"],
                "truncated": gen["truncated"], "rewards": verdict["rewards"],
                "reward": verdict["rewards"]["accuracy"], "advantage": None,
                "traces": traces.tag(completion, prompt=prompts[qi]),
                "accepted": reason is None, "reject_reason": reason,
            })
        kept_questions += bool(kept)
    samples = len(records)
    stats = {
        "task": task.name, "split": split, "questions": len(drawn), "gold_parse_failures": len(drawn) - len(usable),
        "k": k, "samples": samples, "accepted": len(rows), "rejected": rejected, "failed": failed,
        "questions_with_an_accepted_sample": kept_questions,
        "acceptance_rate": len(rows) / samples if samples else None,
        "mean_tokens": sum(r["tokens"] for r in records) / samples if samples else None,
        "template": template, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
        "filters": asdict(filters), "seconds": time.time() - t0,
    }
    return SampleResult(rows=rows, stats=stats, records=records)


# --- As a run directory ----------------------------------------------------------------------------


def _sample_options() -> set[str]:
    params = inspect.signature(rejection_sample).parameters
    return {n for n, p in params.items() if p.kind == p.KEYWORD_ONLY} - {"provenance", "progress", "seed"}


def sample_to_run(*, model, tokenizer=None, adapter: str | None = None, task="chain_sum",
                  task_kwargs: dict | None = None, seed: int = 0, runs_root: str | Path = "runs",
                  run_name: str | None = None, precision: str = "auto", quantization: str = "auto",
                  step: int | None = None, progress: bool = True, run_info: dict | None = None,
                  **options) -> SampleResult:
    """``rejection_sample`` recorded as the run directory ``runs_root/run_name`` (module docstring).

    ``model``: a name or path (loaded here, with ``adapter`` on top), or a loaded model with its
    ``tokenizer``. ``task``: a name (built with ``task_kwargs`` and ``seed``) or a Task. ``options``:
    rejection_sample's keyword arguments. ``run_info`` goes into config.yaml and the start event.
    Returns the SampleResult with ``run_dir`` and ``data_path`` set.
    """
    from workbench.models import load_policy
    from workbench.runlog import RunWriter, this_process
    from workbench.stages.sft_data import write_jsonl
    from workbench.tasks import get_task
    from workbench.lifecycle import package_versions

    unknown = sorted(set(options) - _sample_options())
    if unknown:
        raise WorkbenchError(f"unknown sampling option(s) {unknown}; valid: {', '.join(sorted(_sample_options()))}")
    # Bad names fail here, before a run directory exists.
    task_obj = get_task(task, seed=seed, **(task_kwargs or {})) if isinstance(task, str) else task
    if isinstance(model, (str, Path)):
        from workbench.models import check_model_name

        model_name = str(model)
        check_model_name(model_name)
    elif tokenizer is None:
        raise WorkbenchError("sample_to_run got a loaded model without its tokenizer; pass tokenizer=")
    else:
        model_name = getattr(getattr(model, "config", None), "_name_or_path", None)
    run_name = run_name or f"sample-{os.path.basename(task_obj.name)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    writer = RunWriter.create(runs_root, run_name)
    config = {"stage": "sample", "model": model_name, "adapter": adapter,
              "task": task if isinstance(task, str) else task_obj.name, "task_kwargs": task_kwargs or {},
              "seed": seed, "precision": precision, "quantization": quantization, "step": step,
              **{n: p.default for n, p in inspect.signature(rejection_sample).parameters.items()
                 if n in _sample_options()}, **options, **(run_info or {})}
    writer.write_config(config)
    t0 = time.time()
    writer.event("start", stage="sample", model=config["model"], task=config["task"], adapter=adapter,
                 **this_process(), versions=package_versions(), **(run_info or {}))
    try:
        if isinstance(model, (str, Path)):
            policy, tokenizer = load_policy(model_name, adapter, precision, quantization, seed)
        else:
            policy = model
        result = rejection_sample(policy, tokenizer, task_obj, provenance={
            "model": config["model"], "adapter": adapter, "step": step}, progress=progress, seed=seed, **options)
        writer.rollouts(result.records)
        data_path = write_jsonl(result.rows, writer.path / DATA)
        writer.event("sample_summary", **result.stats)
        writer.event("end", status="finished", seconds=time.time() - t0, accepted=result.stats["accepted"],
                     samples=result.stats["samples"])
    except BaseException as e:
        writer.event("error", where="sample", error=repr(e), traceback=traceback.format_exc())
        writer.event("end", status="crashed", seconds=time.time() - t0, error=repr(e))
        raise
    finally:
        writer.close()
    result.run_dir, result.data_path = str(writer.path), str(data_path)
    return result



def format_stats(stats: dict) -> str:
    """The stats as the lines ``workbench sample`` prints."""
    n = stats["samples"]
    pct = (lambda x: f"{100 * x / n:5.1f}%") if n else (lambda x: "   - ")
    lines = [f"{stats['task']} ({stats['split']}): {stats['questions']} questions, {stats['gold_parse_failures']} "
             f"skipped for an unparseable gold answer, {n} samples ({stats['k']} per question, "
             f"T={stats['temperature']}, top-p={stats['top_p']}, <= {stats['max_new_tokens']} new tokens, "
             f"mean {stats['mean_tokens'] or 0:.1f})",
             f"  accepted   {stats['accepted']:6d} {pct(stats['accepted'])}   questions with an accepted sample: "
             f"{stats['questions_with_an_accepted_sample']}"]
    for reason in REJECT_REASONS:
        also = f"   (fails this check at all: {stats['failed'][reason]})" if reason in stats["failed"] else ""
        lines.append(f"  {reason:10s} {stats['rejected'][reason]:6d} {pct(stats['rejected'][reason])}{also}")
    lines.append(f"  {stats['seconds']:.1f} s")
    return "\n".join(lines)
