"""R1-Zero's curves of a run: held-out metrics per evaluated step against step 0, and training per step.

    from workbench.analysis.curves import heldout_curves, format_heldout, training_curves, format_training
    print(format_heldout(heldout_curves("runs/r1_zero_gemma")))
    print(format_training(training_curves("runs/r1_zero_gemma"), every=5))

or ``workbench curves RUN``. The held-out curves read the run's ``eval`` events (``eval_every`` and
``eval_samples`` > 0 in its config): every evaluation answers the same held-out questions, so each
metric's change from step 0 is a paired difference over questions, with its standard error (the
questions are the unit: a question's samples are not independent of each other). The training
curves read metrics.jsonl and the rollouts (the rollouts' behaviour tags, ``traces.step_curves``);
they are the rollouts the policy was trained on, not held out.
"""

from __future__ import annotations

import math

from workbench.runlog import Run

# Held-out metrics: (name, label). Rates are shares of a question's samples (or its greedy answer).
HELDOUT_METRICS = (
    ("pass@1", "sampled pass@1"),
    ("greedy", "greedy accuracy"),
    ("format", "share of samples in R1's strict format"),
    ("tokens", "mean response length (tokens)"),
    ("reflective", "share of samples with any of R1's reflective words"),
    ("verification", "share of samples with verification"),
    ("wait", "share of samples with 'wait'"),
)
# A task that can verify a completion's own checks (the aha lab's worlds: ``task.check_metrics``) adds these.
CHECK_METRICS = (
    ("faithful", "share of checks right and followed"),
    ("wait_after_correct", "share of 'wait's after a right answer"),
)


def metrics_for(task) -> tuple[tuple[str, str], ...]:
    """HELDOUT_METRICS, plus CHECK_METRICS when ``task`` defines ``check_metrics``."""
    return HELDOUT_METRICS + (CHECK_METRICS if hasattr(task, "check_metrics") else ())


# The curves' names for ``evaluate.question_rates``' rates.
_RATE_NAMES = {"pass@1": "pass@1", "tokens": "mean_tokens", "format": "format_valid", "reflective": "any_reflective",
               "verification": "behaviour/verification", "wait": "term/wait", "faithful": "check/faithful",
               "wait_after_correct": "check/wait_after_correct"}


def per_question(event: dict, task) -> dict[str, dict[str, float]]:
    """metric -> {question id: value} for one ``eval`` event (a question without a value is left out):
    greedy correctness, and each sampled question's ``evaluate.question_rates`` (what the event's
    own ``sampled`` means were computed from)."""
    from workbench.analysis.evaluate import question_rates

    names = metrics_for(task)
    out: dict[str, dict[str, float]] = {name: {} for name, _ in names}
    for it in event.get("items", []):
        out["greedy"][it["id"]] = float(it["correct"])
    checks = hasattr(task, "check_metrics")
    for q in (event.get("sampled") or {}).get("items", []):
        item = {"metadata": item_metadata(task, q["id"])} if checks else None
        rates = question_rates(q["samples"], task, item, q.get("prompt_opens_think", False))
        for name, _ in names:
            if name in _RATE_NAMES and _RATE_NAMES[name] in rates:
                out[name][q["id"]] = rates[_RATE_NAMES[name]]
    return out


def item_metadata(task, item_id: str) -> dict:
    # Item ids are "<task>/<split>/<index>" and items are pure functions of them (workbench.tasks.base).
    split, index = item_id.split("/")[-2:]
    return task.item(split, int(index))["metadata"]


def mean_se(values: list[float]) -> tuple[float | None, float | None]:
    """``estimators.mean_and_stderr`` with None where it gives NaN (no values, or one), so tables print "-"."""
    from workbench.analysis.estimators import mean_and_stderr

    mean, se = mean_and_stderr(values)
    return (None if math.isnan(mean) else mean), (None if math.isnan(se) else se)


def run_task(run_dir):
    """The task of a run directory, built as the run built it (its name, seed and task_kwargs)."""
    from workbench.tasks import get_task

    cfg = Run(run_dir).config()
    return get_task(cfg["task"], seed=cfg.get("seed", 0), **(cfg.get("task_kwargs") or {}))


def heldout_curves(run_dir) -> list[dict]:
    """One dict per evaluated step, sorted by step: ``step`` and, for each metric of ``metrics_for``,
    its mean over held-out questions (``<m>``, ``<m>_se``) and its paired change from the first
    evaluation (step 0) over the questions that have it at both (``<m>_delta``, ``<m>_delta_se``).
    Rates in [0, 1], tokens in tokens; standard errors over questions. [] without a step-0 ("before")
    evaluation."""
    run = Run(run_dir)
    task = run_task(run_dir)
    evals = []
    for e in run.events():
        # The "before" evaluation is step 0 (one reused from an earlier stage was recorded without a step).
        step = 0 if e.get("phase") == "before" else e.get("step")
        if e.get("event") == "eval" and step is not None:
            evals.append((step, e))
    evals.sort(key=lambda pair: pair[0])
    if not evals or evals[0][0] != 0:
        return []  # no step-0 evaluation to pair with
    base = per_question(evals[0][1], task)
    curves = []
    for step, e in evals:
        now = per_question(e, task)
        row = {"step": step}
        for name in now:
            row[name], row[f"{name}_se"] = mean_se(list(now[name].values()))
            common = [q for q in now[name] if q in base[name]]
            row[f"{name}_delta"], row[f"{name}_delta_se"] = mean_se([now[name][q] - base[name][q] for q in common])
        curves.append(row)
    return curves


def cell(value, se, pct: bool) -> str:
    """"12.5 ± 3.1" (a rate printed in %, ``pct``), or "-" for None."""
    if value is None:
        return "-"
    scale = 100 if pct else 1
    return f"{value * scale:.1f}" + (f" ± {se * scale:.1f}" if se is not None else "")


def format_heldout(curves: list[dict], names: list[str] | None = None) -> str:
    """The held-out curves as a text table: value ± stderr per step, then the last step's change from step 0."""
    if not curves:
        return "no held-out evaluations with a step (set eval_every, and eval_samples for sampled metrics)"
    names = names or [k for k in curves[0] if f"{k}_delta" in curves[0]]
    lines = [f"{'step':>5} " + " ".join(f"{n:>18}" for n in names)]
    for row in curves:
        lines.append(f"{row['step']:>5} " + " ".join(f"{cell(row[n], row[n + '_se'], n != 'tokens'):>18}"
                                                     for n in names))
    if len(curves) > 1:
        last = curves[-1]
        lines.append(f"{'Δ':>5} " + " ".join(f"{cell(last[n + '_delta'], last[n + '_delta_se'], n != 'tokens'):>18}"
                                              for n in names))
    lines.append("rates in %, tokens in tokens; ± one standard error over held-out questions; "
                 "Δ: last step minus step 0 on the same questions (paired)")
    return "\n".join(lines)


# Training curves: (column, source key, is a rate). metrics.jsonl keys are TRL's means over the step's rollouts.
TRAINING_COLUMNS = (
    ("reward", "reward_mean", False),
    ("accuracy", "accuracy", True),
    ("format", "rewards/format/mean", True),
    ("tags", "rewards/tags/mean", False),
    ("tokens", "completion_length_mean", False),
    ("truncated", "truncation_rate", True),
    ("reflective", "any_reflective_share", True),
    ("seconds", "step_seconds", False),
)


def training_curves(run_dir) -> list[dict]:
    """One dict per optimizer step: metrics.jsonl's record joined with ``traces.step_curves`` of
    that step's rollouts (reflective-word and format shares of the rollouts trained on)."""
    from workbench.analysis import traces

    run = Run(run_dir)
    tags = {row["step"]: row for row in traces.step_curves(run.rollouts())}
    rows = []
    for m in run.metrics():
        if m.get("step") is None or "reward_mean" not in m:
            continue
        rows.append({**{k: v for k, v in tags.get(m["step"], {}).items() if k not in m}, **m})
    return rows


def format_training(rows: list[dict], every: int = 1) -> str:
    """Every ``every``-th step (and the last) of ``training_curves`` as a text table; columns a run
    does not have (no format reward) are left out."""
    cols = [(c, k, pct) for c, k, pct in TRAINING_COLUMNS if any(r.get(k) is not None for r in rows)]
    lines = [f"{'step':>5} " + " ".join(f"{c:>10}" for c, _, _ in cols)]
    for i, r in enumerate(rows):
        if i % every and i != len(rows) - 1:
            continue
        lines.append(f"{r['step']:>5} " + " ".join(
            f"{'-' if r.get(k) is None else (f'{100 * r[k]:.1f}' if pct else f'{r[k]:.3g}'):>10}" for c, k, pct in cols))
    lines.append("training rollouts (not held out): rates in %, reward and tags in points, tokens in tokens, "
                 "seconds per step")
    return "\n".join(lines)
