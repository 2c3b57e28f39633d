"""Held-out evaluation: generate for a task's eval split and score with the task's verifier.

Two protocols: ``evaluate_accuracy`` (greedy, one answer per question: what training runs before
and after GRPO) and ``evaluate_sampled`` (R1's protocol: k samples per question at temperature
0.6, top-p 0.95; pass@1, pass@k, cons@k, format validity, length, each with a standard error).
``workbench eval`` runs either on a base model, an adapter or a run directory's checkpoint.

``evaluate_accuracy`` is what training runs before and after GRPO: same prompts, greedy decoding,
so the two numbers differ only by what training changed. ``inference_mode`` puts a model into the
state generation needs and restores it afterwards: a model fresh out of ``GRPOTrainer.train()``
is in train mode (dropout on) with the KV cache off and possibly gradient checkpointing on, and
greedy generation from it produced garbage ("The-----------------------").
"""

from __future__ import annotations

import math
from contextlib import contextmanager

from workbench.attention import decode_attention
from workbench.prepacked import prepacked_linears
from workbench.errors import WorkbenchError
from workbench.analysis.estimators import mean_and_stderr, mean_cons_at_k, mean_pass_at_k, pass_at_1, pass_at_k  # noqa: F401


@contextmanager
def inference_mode(model):
    import torch

    was_training = model.training
    configs = [m.config for m in model.modules() if hasattr(m, "config") and hasattr(m.config, "use_cache")]
    old_cache = [c.use_cache for c in configs]
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # transformers 5.24 renamed gradient checkpointing to activation checkpointing (the old names warn).
    new = hasattr(base, "activation_checkpointing_enable")
    was_checkpointing = getattr(base, "is_activation_checkpointing" if new else "is_gradient_checkpointing", False)
    if was_checkpointing:
        (base.activation_checkpointing_disable if new else base.gradient_checkpointing_disable)()
    for c in configs:
        c.use_cache = True
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        for c, old in zip(configs, old_cache):
            c.use_cache = old
        if was_checkpointing:
            (base.activation_checkpointing_enable if new else base.gradient_checkpointing_enable)()
        model.train(was_training)


@contextmanager
def patched_generate(model, wrap):
    """Within the block, ``model.generate`` is ``wrap(original_generate)``; afterwards it is what it was
    (an instance attribute someone else set is put back, else the class's method shows through)."""
    original = model.generate
    had_own = "generate" in vars(model)
    model.generate = wrap(original)
    try:
        yield model
    finally:
        if had_own:
            model.generate = original
        else:
            del model.generate


def stopping_generation(model, tokenizer):
    """Within the block, ``model.generate(...)`` can honour ``stop_strings``: it receives the
    ``tokenizer`` they need (TRL calls generate without one), and when generation ended before its
    budget (every row finished), rows that ended at a stop string without room for the EOS filler
    get one, so that TRL's mask (up to the first EOS) reads them as ended, not clipped."""

    def wrap(original):
        def generate(input_ids=None, **kwargs):
            import torch

            out = original(input_ids=input_ids, **{"tokenizer": tokenizer, **kwargs})
            config = kwargs.get("generation_config")
            budget = kwargs.get("max_new_tokens") or getattr(config, "max_new_tokens", None)
            if budget is not None and out.size(1) - input_ids.size(1) < budget:
                eos = torch.full((out.size(0), 1), tokenizer.eos_token_id, dtype=out.dtype, device=out.device)
                out = torch.cat([out, eos], dim=1)  # after the first EOS of rows that have one: masked
            return out
        return generate

    return patched_generate(model, wrap)


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 32,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, progress: bool = True,
             desc: str = "generate", stop: tuple[str, ...] = ()) -> list[dict]:
    """Generate one completion per prompt text: [{"completion", "tokens", "truncated"}].

    ``stop``: strings that end a completion besides EOS (``workbench.templates.stop_strings``),
    through transformers' ``StopStringCriteria``; a completion that stops there ends with the
    token that completes the string, then one EOS token, as the GRPO trainer's rollouts do.
    ``tokens`` counts new tokens with the EOS; ``truncated``: the budget ran out first."""
    from contextlib import nullcontext

    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only batches must be left-padded for generation
    eos = tokenizer.eos_token_id
    out = []
    try:
        # Single-token attention without SDPA's slow CPU path (workbench.attention); CPU bf16 linears
        # with their weights packed once (workbench.prepacked).
        with inference_mode(model), decode_attention(model), prepacked_linears(model, min(batch_size, len(prompts))):
            for start in tqdm(range(0, len(prompts), batch_size), desc=desc, disable=not progress, leave=False):
                batch = prompts[start:start + batch_size]
                # Tokenized as TRL's GRPOTrainer tokenizes a text prompt (the tokenizer's own special tokens:
                # Gemma's BOS, which it needs; none for SmolLM2), so evaluation sees what training saw.
                enc = tokenizer(batch, return_tensors="pt", padding=True).to(device)
                kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=tokenizer.pad_token_id)
                if stop:
                    # A row that reaches a stop string is finished; transformers fills the rest with the
                    # pad id, made EOS here so the row reads as "ended" like one that sampled EOS.
                    kwargs.update(stop_strings=list(stop), pad_token_id=eos)
                if do_sample:
                    kwargs.update(temperature=temperature, top_p=top_p, top_k=0)
                else:
                    # Greedy: unset sampling knobs a generation_config may carry, so none can leak in.
                    kwargs.update(temperature=None, top_p=None, top_k=None)
                # The GRPO trainer's wrapper: the tokenizer stop strings need, and an EOS for the rows
                # that stopped in the last step when every row ended before the budget.
                with stopping_generation(model, tokenizer) if stop else nullcontext():
                    seqs = model.generate(**enc, **kwargs)
                new = seqs[:, enc["input_ids"].shape[1]:]  # (B, T_new)
                for row in new.tolist():
                    n = row.index(eos) + 1 if eos in row else len(row)
                    out.append({
                        "completion": tokenizer.decode(row[:n], skip_special_tokens=True),
                        "tokens": n,
                        "truncated": eos not in row,
                    })
    finally:
        tokenizer.padding_side = old_side
    return out


def evaluate_accuracy(model, tokenizer, task, items: list[dict], prompts: list[str], max_new_tokens: int,
                      batch_size: int = 32, progress: bool = True, desc: str = "eval",
                      stop: tuple[str, ...] = ()) -> dict:
    """Greedy accuracy on ``items`` (rendered as ``prompts``) with its binomial standard error."""
    from workbench.rewards import extract_answer

    gens = generate(model, tokenizer, prompts, max_new_tokens, batch_size=batch_size, progress=progress, desc=desc,
                    stop=stop)
    rows = []
    for item, gen in zip(items, gens):
        extracted = extract_answer(gen["completion"], task.answer_kind)
        score = task.score(extracted, item)
        # Accuracy counts full marks only: some verifiers give partial credit (countdown: 0.05 for
        # using the right numbers), which is a reward, not a correct answer.
        rows.append({"id": item["id"], "question": item["question"], "answer": item["answer"],
                     "completion": gen["completion"], "extracted": extracted, "score": score,
                     "correct": score >= 1.0, "tokens": gen["tokens"], "truncated": gen["truncated"]})
    n = len(rows)
    acc = sum(r["correct"] for r in rows) / n if n else float("nan")
    return {"n": n, "accuracy": acc, "stderr": binomial_stderr(acc, n), "items": rows}


def binomial_stderr(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n else float("nan")


def paired_difference(before: dict, after: dict) -> dict:
    """Accuracy gain on the same items, with the standard error of the paired difference."""
    a = {r["id"]: r["correct"] for r in before["items"]}
    diffs = [r["correct"] - a[r["id"]] for r in after["items"] if r["id"] in a]
    n = len(diffs)
    if n < 2:
        return {"n": n, "gain": float("nan"), "stderr": float("nan")}
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return {"n": n, "gain": mean, "stderr": math.sqrt(var / n)}


def evaluate_sampled(model, tokenizer, task, items: list[dict], prompts: list[str], k: int, n: int | None = None,
                     max_new_tokens: int = 256, temperature: float = 0.6, top_p: float = 0.95,
                     batch_size: int = 32, progress: bool = True, stop: tuple[str, ...] = ()) -> dict:
    """n samples per question (default k); pass@1 and pass@k (unbiased, from the n samples), cons@k
    (majority vote of the first k extracted answers), format validity and length, with stderrs.
    ``stop``: as in ``generate``."""
    from workbench.analysis import traces
    from workbench.rewards import extract_answer
    from workbench.rewards.extract import prompt_opens_think

    n = n or k
    if k < 1 or k > n:
        raise WorkbenchError(f"k ({k}) larger than samples taken (n={n}); take n >= k samples per question")
    if not items:
        raise WorkbenchError("no evaluation items: the task's eval split is empty")
    rows = [p for p in prompts for _ in range(n)]  # each question's n samples side by side
    gens = generate(model, tokenizer, rows, max_new_tokens, batch_size=batch_size, do_sample=True,
                    temperature=temperature, top_p=top_p, progress=progress, desc=f"eval {n} samples", stop=stop)
    questions, correct, votes, formats, lengths = [], [], [], [], []
    for q, (item, prompt) in enumerate(zip(items, prompts)):
        samples = gens[q * n:(q + 1) * n]
        answers = [extract_answer(g["completion"], task.answer_kind) for g in samples]
        ok = [task.score(a, item) >= 1.0 for a in answers]
        correct.append(ok)
        votes.append(answers[:k])
        formats += [traces.split_think_answer(g["completion"], prompt)["format_ok"] for g in samples]
        lengths += [g["tokens"] for g in samples]
        questions.append({"id": item["id"], "question": item["question"], "answer": item["answer"],
                          "metadata": item.get("metadata"), "prompt_opens_think": prompt_opens_think(prompt),
                          "samples": [{**g, "extracted": a, "correct": c} for g, a, c in zip(samples, answers, ok)]})
    p1, p1_se = pass_at_1(correct)
    pk, pk_se = mean_pass_at_k(correct, k)
    ck, ck_se = mean_cons_at_k(votes, items, lambda a, item: task.score(a, item) >= 1.0, same=task.same_answer)
    fmt, fmt_se = mean_and_stderr([float(f) for f in formats])
    length, length_se = mean_and_stderr([float(x) for x in lengths])
    return {
        "questions": len(items), "n": n, "k": k, "temperature": temperature, "top_p": top_p,
        "pass@1": p1, "pass@1_stderr": p1_se, f"pass@{k}": pk, f"pass@{k}_stderr": pk_se,
        f"cons@{k}": ck, f"cons@{k}_stderr": ck_se, "format_valid": fmt, "format_valid_stderr": fmt_se,
        "mean_tokens": length, "mean_tokens_stderr": length_se, "items": questions,
    }


def question_rates(samples: list[dict], task, item: dict | None = None, prompt_opens_think: bool = False) -> dict:
    """One question's rates over its samples ({"completion", "tokens", "correct"} each): ``pass@1``,
    ``mean_tokens`` (tokens), ``format_valid`` (``prompt_opens_think``: the prompt's open <think>
    counts, as the reward saw it), ``behaviour/<b>`` for ``traces.BEHAVIOURS``, ``term/wait``,
    ``any_reflective``, and with a task that defines ``check_metrics`` and the question's ``item``,
    ``check/<name>`` over the samples where it is not None. A rate no sample has is left out."""
    from workbench.analysis import traces

    rates: dict[str, float] = {}

    def add(name: str, values: list) -> None:
        values = [float(v) for v in values if v is not None]
        if values:
            rates[name] = sum(values) / len(values)

    tags = [traces.tag(s["completion"]) for s in samples]
    add("pass@1", [s["correct"] for s in samples])
    add("mean_tokens", [s["tokens"] for s in samples])
    opened = "<think>" if prompt_opens_think else None
    add("format_valid", [traces.split_think_answer(s["completion"], opened)["format_ok"] for s in samples])
    for b in traces.BEHAVIOURS:
        add(f"behaviour/{b}", [t["behaviours"][b] > 0 for t in tags])
    add("term/wait", [t["terms"]["wait"] > 0 for t in tags])
    add("any_reflective", [any(t["terms"].values()) for t in tags])
    check = getattr(task, "check_metrics", None)
    if check is not None and item is not None:
        found: dict[str, list] = {}
        for s in samples:
            for name, value in check(s["completion"], item).items():
                found.setdefault(name, []).append(value)
        for name, values in found.items():
            add(f"check/{name}", values)
    return rates


def sampled_metrics(sampled: dict, task) -> dict:
    """What the sampled answers of ``evaluate_sampled`` show, each as (mean, stderr) over questions.

    ``pass@1``, ``mean_tokens`` (tokens), ``format_valid``; the share of samples showing each
    behaviour of ``traces.BEHAVIOURS`` and containing "wait" or any reflective term; and, when the
    task defines ``check_metrics(completion, item) -> {name: value or None}`` (the aha lab's worlds,
    whose checks can be verified exactly), the mean of each of those over the samples where it is
    not None (``question_rates``). Every rate is a per-question mean first, so questions weigh
    equally and the stderr is over questions (a question's samples are not independent of each other).
    """
    per_question: dict[str, list[float]] = {}
    for q in sampled["items"]:
        item = {"id": q["id"], "question": q["question"], "answer": q["answer"], "metadata": q.get("metadata") or {}}
        for name, rate in question_rates(q["samples"], task, item, q.get("prompt_opens_think", False)).items():
            per_question.setdefault(name, []).append(rate)
    out = {"questions": sampled["questions"], "n": sampled["n"], "temperature": sampled["temperature"]}
    for name, values in per_question.items():
        out[name], out[f"{name}_stderr"] = mean_and_stderr(values)
    out["items"] = [{"id": q["id"], "prompt_opens_think": q.get("prompt_opens_think", False),
                     "samples": [{k: s[k] for k in ("completion", "tokens", "correct")} for s in q["samples"]]}
                    for q in sampled["items"]]
    return out
