"""The playground: sample a run's policy (or its base model) on a question and score the answers
with the run's rewards. torch/transformers are imported only when it generates."""

from __future__ import annotations

import html
import json
import re
import threading
from pathlib import Path

from apps.data.rollouts import rollout_card
from workbench.analysis import traces


_MODELS: dict[tuple, tuple] = {}
_MODELS_LOCK = threading.Lock()


def _task(config: dict):
    from workbench.tasks import get_task

    return get_task(config.get("task", "chain_sum"), seed=config.get("seed", 0), **(config.get("task_kwargs") or {}))


def task_questions(config: dict, n: int = 24) -> list[dict]:
    """Held-out (eval split) items of the run's task: {"id", "question", "answer", "metadata"}."""
    return _task(config).items("eval", n)


def load_policy(model: str, adapter_dir: str | Path | None = None, precision: str = "auto",
                quantization: str = "auto", seed: int = 0):
    """(model, tokenizer), the base model or base + LoRA adapter; cached (the last two)."""
    key = (model, str(adapter_dir) if adapter_dir else None, precision, quantization, seed)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from workbench.models import load_policy as load

            policy, tokenizer = load(model, adapter_dir, precision, quantization, seed)
            while len(_MODELS) >= 2:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[key] = (policy, tokenizer)
        return _MODELS[key]


def playable_model(model: str, runs_root: str | Path | None) -> str:
    """``model`` if the app may load it for a run's config, else ValueError.

    A run directory may come from elsewhere, so its config.yaml is not trusted to name files: a
    local path is loaded only inside the runs root (where a pipeline stage leaves its merged policy);
    otherwise only the workbench's own model names and hub ids ('org/name', nothing local read).
    """
    from workbench.models import MODEL_NAMES

    if model in MODEL_NAMES:
        return model
    path = Path(model)
    if path.exists():
        if runs_root is not None and path.resolve().is_relative_to(Path(runs_root).resolve()):
            return model
        raise ValueError(f"the run's model {model!r} is a local path outside the runs root; the app loads "
                         "local models only from inside it")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", model) and ".." not in model:
        return model
    raise ValueError(f"the run's model {model!r} is neither a workbench model name, a hub id nor a model "
                     "directory inside the runs root")


def play(config: dict, question: str, answer: str | None = None, metadata: dict | None = None,
         n: int = 4, max_new_tokens: int | None = None, temperature: float = 1.0,
         adapter_dir: str | Path | None = None, runs_root: str | Path | None = None) -> list[dict]:
    """Sample ``n`` answers to ``question`` and score each with the run's rewards.

    Returns [{"completion", "tokens", "truncated", "rewards": {name: value or None}, "reward"}]; a
    reward that cannot apply (no gold answer for your own question) is None. The run's model must
    pass ``playable_model`` (local paths only inside ``runs_root``).
    """
    from workbench.analysis.evaluate import generate
    from workbench.rewards import build_rewards
    from workbench.templates import render_prompt, stop_strings

    if not (question or "").strip():
        raise ValueError("enter a question first")
    model = playable_model(config.get("model", "smollm2-135m-instruct"), runs_root)
    policy, tokenizer = load_policy(model, adapter_dir,
                                    config.get("precision", "auto"), config.get("quantization", "auto"),
                                    config.get("seed", 0))
    max_new = int(max_new_tokens or config.get("max_completion_length") or 64)
    template = config.get("template", "chat_concise")
    prompt = render_prompt(template, question, tokenizer)
    outs = generate(policy, tokenizer, [prompt] * n, max_new, do_sample=True, temperature=temperature,
                    top_p=config.get("top_p", 1.0), progress=False,
                    stop=stop_strings(template, tokenizer, config.get("stop", "auto")))
    funcs, weights = build_rewards(config.get("rewards") or {"accuracy": 1.0}, _task(config), max_new,
                                   on_error=lambda *a: None)
    completions = [o["completion"] for o in outs]
    columns = dict(prompts=[prompt] * n, question=[question] * n, metadata=[json.dumps(metadata or {})] * n,
                   completion_ids=[tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions])
    if answer not in (None, ""):
        columns["answer"] = [str(answer)] * n
    scores = {getattr(fn, "__name__", type(fn).__name__): fn(completions, **columns) for fn in funcs}
    results = []
    for i, o in enumerate(outs):
        rewards = {name: vals[i] for name, vals in scores.items()}
        results.append({**o, "rewards": rewards,
                        "reward": sum(w * v for w, v in zip(weights, rewards.values()) if v is not None)})
    return results


def play_html(results: list[dict], question: str, answer: str | None, model: str = "") -> str:
    gold = html.escape(str(answer)) if answer not in (None, "") else "none given (accuracy not scored)"
    head = (f'<div class="wb-ghead">{html.escape(model)} · <b>{html.escape(question)}</b> · gold answer '
            f"<code>{gold}</code></div>")
    cards = [rollout_card({**r, "index": i, "advantage": None, "tag": traces.tag(r["completion"])})
             for i, r in enumerate(results)]
    return f'<div class="wb-group">{head}<div class="wb-cards">{"".join(cards)}</div></div>'
