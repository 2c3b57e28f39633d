"""``workbench audit RUN``: re-score a finished (or running) GRPO run with today's checkers, and
raise the alarms a researcher checks before trusting its curves. Reads the run directory only
(plus the task it names, rebuilt from its config) and writes ``audit.json`` into it.

1. **Counterfactual re-scoring** (no regeneration): every logged rollout's completion is scored
   again by the rewards in ``RESCORED`` exactly as training builds them (``build_rewards``), with
   the item rebuilt from the rollout's ``prompt_id`` (tasks are deterministic). Rollouts whose
   reward would change are listed with before/after values: whether a checker fix changes a
   run's conclusions. Rewards not in ``RESCORED`` (code: a sandbox run per rollout; length,
   overlong, repetition: token ids not logged) are left as logged and named in the report.
2. **Gold answers the checker cannot read**: a gold that does not score 1 against itself, or a
   number-kind gold that is not one number, is counted and listed (its questions can never be
   rewarded).
3. **Alarms** (``ALARMS``), each with the numbers behind it; quarters are the first and last
   quarter of the logged steps (at least one step each):
   - ``reward_without_heldout``: the training reward rose by at least 0.1 while held-out accuracy
     (before vs after, paired over the same questions) did not rise by two standard errors;
   - ``format_without_accuracy``: the format reward rose by at least 0.1 while accuracy moved
     less than 0.02;
   - ``length_collapse`` / ``length_blowup``: mean completion length in the last quarter under
     half / over twice the first quarter's, or more than half the completions truncated at the end;
   - ``dominant_component``: with two or more rewards, one carries over 80% of the total
     (|weight x mean| summed over steps);
   - ``no_signal``: over half the groups of the last quarter had equal rewards for every rollout
     (zero advantage: GRPO learns nothing from them).

    from workbench.analysis.audit import audit_run, format_audit
    report = audit_run("runs/demo")      # also writes runs/demo/audit.json
    print(format_audit(report))
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from workbench.errors import WorkbenchError

AUDIT_FILE = "audit.json"
RESCORED = ("accuracy", "partial_credit", "format", "tags", "language")
ALARMS = ("reward_without_heldout", "format_without_accuracy", "length_collapse", "length_blowup",
          "dominant_component", "no_signal")
MAX_LISTED = 200  # changed rollouts and unreadable golds listed in audit.json (all are counted)
_BATCH = 256


def _item_of(task, prompt_id: str | None, cache: dict) -> dict | None:
    """The task item a rollout answered, rebuilt from its ``prompt_id`` ("<task>/<split>/<index>")."""
    if not prompt_id:
        return None
    if prompt_id not in cache:
        try:
            _, split, index = str(prompt_id).rsplit("/", 2)
            cache[prompt_id] = task.item(split, int(index))
        except Exception:
            cache[prompt_id] = None
    return cache[prompt_id]


def rescore(rollouts: list[dict], task, weights: dict[str, float], max_completion_length: int) -> dict:
    """Re-score ``rollouts`` with today's rewards of ``RESCORED`` that the run used.

    Returns {"rescored": [names], "left_as_logged": [names], "changed": {name: count}, "means":
    {name: [before, after]}, "changes": [{"step", "prompt_id", "index", "reward", "before", "after",
    "completion"}], "unmatched": rollouts whose item could not be rebuilt}."""
    from workbench.rewards import build_rewards

    names = [n for n in weights if n in RESCORED]
    funcs, _ = build_rewards({n: 1.0 for n in names}, task, max_completion_length)
    cache: dict = {}
    changed = dict.fromkeys(names, 0)
    sums = {n: [0.0, 0.0, 0] for n in names}
    changes, unmatched = [], 0
    for start in range(0, len(rollouts), _BATCH):
        batch = rollouts[start:start + _BATCH]
        items = [_item_of(task, r.get("prompt_id"), cache) for r in batch]
        unmatched += sum(it is None for it in items)
        columns = {
            "prompts": [r.get("prompt") or "" for r in batch],
            "answer": [it["answer"] if it else str(r.get("answer", "")) for r, it in zip(batch, items)],
            "metadata": [json.dumps(it["metadata"]) if it else "{}" for it in items],
            "question": [it["question"] if it else "" for it in items],
        }
        completions = [r.get("completion") or "" for r in batch]
        for name, fn in zip(names, funcs):
            after = fn(completions, **columns)
            for r, value in zip(batch, after):
                before = (r.get("rewards") or {}).get(name)
                if before is not None and value is not None:
                    s = sums[name]
                    s[0], s[1], s[2] = s[0] + before, s[1] + value, s[2] + 1
                # A reward that failed when logged (None) and scores now, or the reverse, changed too.
                if (before is None) != (value is None) or (before is not None and abs(before - value) > 1e-9):
                    changed[name] += 1
                    if len(changes) < MAX_LISTED:
                        changes.append({"step": r.get("step"), "prompt_id": r.get("prompt_id"), "index": r.get("index"),
                                        "reward": name, "before": before, "after": value,
                                        "completion": (r.get("completion") or "")[-200:]})
    return {"rescored": names, "left_as_logged": [n for n in weights if n not in RESCORED], "changed": changed,
            "means": {n: [s[0] / s[2], s[1] / s[2]] if s[2] else [None, None] for n, s in sums.items()},
            "changes": changes, "unmatched": unmatched}


def unreadable_golds(task, items: list[dict]) -> list[dict]:
    """Items whose gold answer the task's checker cannot read: it does not score 1 against itself,
    or (number kind) it is not one number. [{"id", "answer", "why"}]."""
    from workbench.rewards.answers import parse_number

    out = []
    for item in items:
        gold = str(item.get("answer", ""))
        if task.answer_kind == "number" and parse_number(gold) is None:
            out.append({"id": item["id"], "answer": gold, "why": "not one number"})
        elif task.answer_kind != "code" and task.score(gold, item) < 1.0:
            out.append({"id": item["id"], "answer": gold, "why": "does not score 1 against itself"})
    return out


def _quarters(metrics: list[dict], key: str) -> tuple[float, float] | None:
    values = [m[key] for m in metrics if isinstance(m.get(key), (int, float)) and math.isfinite(m[key])]
    if len(values) < 2:
        return None
    q = max(1, len(values) // 4)
    return sum(values[:q]) / q, sum(values[-q:]) / q


def no_signal_groups(rollouts: list[dict]) -> dict[int, float]:
    """step -> share of its groups whose rollouts all got the same total reward (zero advantage)."""
    groups: dict[tuple, list] = defaultdict(list)
    for r in rollouts:
        groups[(r.get("step"), r.get("prompt_id"), r.get("group"))].append(r.get("reward"))
    per_step: dict[int, list[bool]] = defaultdict(list)
    for (step, _, _), rewards in groups.items():
        finite = [x for x in rewards if isinstance(x, (int, float))]
        per_step[step].append(len(rewards) > 1 and len(set(finite)) <= 1)
    return {step: sum(flags) / len(flags) for step, flags in sorted(per_step.items(), key=lambda kv: kv[0] or 0)}


def alarms(metrics: list[dict], evals: dict, weights: dict[str, float], no_signal: dict[int, float]) -> list[dict]:
    """The alarms of the module docstring that fire, each {"alarm", "message", numbers...}."""
    from workbench.analysis.evaluate import paired_difference

    out = []
    reward = _quarters(metrics, "reward_mean")
    if reward and reward[1] - reward[0] >= 0.1 and "before" in evals and "after" in evals:
        gain = paired_difference(evals["before"], evals["after"])
        if not gain["gain"] > 2 * (gain["stderr"] if math.isfinite(gain["stderr"]) else 0):
            out.append({"alarm": "reward_without_heldout", "train_reward": reward, "heldout_gain": gain["gain"],
                        "heldout_stderr": gain["stderr"],
                        "message": f"training reward {reward[0]:.2f} -> {reward[1]:.2f}, held-out accuracy "
                                   f"{gain['gain']:+.3f} +- {gain['stderr']:.3f} (paired, n={gain['n']})"})
    fmt, acc = _quarters(metrics, "rewards/format/mean"), _quarters(metrics, "rewards/accuracy/mean")
    if fmt and acc and fmt[1] - fmt[0] >= 0.1 and abs(acc[1] - acc[0]) < 0.02:
        out.append({"alarm": "format_without_accuracy", "format": fmt, "accuracy": acc,
                    "message": f"format reward {fmt[0]:.2f} -> {fmt[1]:.2f} while accuracy {acc[0]:.2f} -> {acc[1]:.2f}"})
    length, trunc = _quarters(metrics, "completion_length_mean"), _quarters(metrics, "truncation_rate")
    if length and length[0] > 0:
        ratio = length[1] / length[0]
        if ratio < 0.5:
            out.append({"alarm": "length_collapse", "length": length, "ratio": ratio,
                        "message": f"mean completion length {length[0]:.1f} -> {length[1]:.1f} tokens (x{ratio:.2f})"})
        if ratio > 2 or (trunc and trunc[1] > 0.5):
            out.append({"alarm": "length_blowup", "length": length, "ratio": ratio, "truncation": trunc,
                        "message": f"mean completion length {length[0]:.1f} -> {length[1]:.1f} tokens (x{ratio:.2f})"
                                   + (f", {trunc[1]:.0%} truncated at the end" if trunc else "")})
    if len(weights) >= 2:
        carried = {}
        for name, w in weights.items():
            values = [m[f"rewards/{name}/mean"] for m in metrics
                      if isinstance(m.get(f"rewards/{name}/mean"), (int, float)) and math.isfinite(m[f"rewards/{name}/mean"])]
            carried[name] = abs(w) * sum(abs(v) for v in values)
        total = sum(carried.values())
        if total > 0:
            name, top = max(carried.items(), key=lambda kv: kv[1])
            if top / total > 0.8:
                out.append({"alarm": "dominant_component", "reward": name, "share": top / total,
                            "message": f"reward {name!r} carries {top / total:.0%} of the weighted total"})
    if no_signal:
        steps = list(no_signal)
        q = max(1, len(steps) // 4)
        late = sum(no_signal[s] for s in steps[-q:]) / q
        if late > 0.5:
            out.append({"alarm": "no_signal", "share": late,
                        "message": f"{late:.0%} of the last quarter's groups had equal rewards (zero advantage)"})
    return out


def audit_run(run_dir, write: bool = True) -> dict:
    """The audit of the run at ``run_dir`` (module docstring), written to ``audit.json`` there
    unless ``write`` is False. Raises WorkbenchError when it is not a GRPO run directory or its
    task cannot be rebuilt."""
    from workbench.runlog import Run
    from workbench.tasks import get_task

    run = Run(Path(run_dir))
    cfg = run.config()
    if not cfg.get("task") or cfg.get("stage") not in (None, "grpo"):
        raise WorkbenchError(f"{run.path} is not a GRPO run directory (no task in its config.yaml, or stage "
                             f"{cfg.get('stage')!r}); workbench audit reads GRPO runs")
    try:
        task = get_task(cfg["task"], seed=cfg.get("seed", 0), **(cfg.get("task_kwargs") or {}))
    except WorkbenchError as e:
        raise WorkbenchError(f"cannot rebuild the task of run {run.name!r}: {e}") from None
    weights = {k: float(v) for k, v in (cfg.get("rewards") or {"accuracy": 1.0}).items()}
    rollouts, metrics, evals = run.rollouts(), run.metrics(), run.evals()
    scored = rescore(rollouts, task, weights, int(cfg.get("max_completion_length") or 256))
    cache: dict = {}
    items = [it for it in (_item_of(task, pid, cache) for pid in dict.fromkeys(r.get("prompt_id") for r in rollouts))
             if it is not None]
    items += [it for it in (_item_of(task, e.get("id"), cache) for e in (evals.get("before") or {}).get("items", []))
              if it is not None]
    golds = unreadable_golds(task, items)
    no_signal = no_signal_groups(rollouts)
    report = {
        "run": run.name, "task": cfg["task"], "checker": getattr(task, "checker", None),
        "rollouts": len(rollouts), "steps": len(metrics), **scored,
        "golds_checked": len(items), "unreadable_golds": len(golds), "unreadable_gold_items": golds[:MAX_LISTED],
        "no_signal_share": (sum(no_signal.values()) / len(no_signal)) if no_signal else None,
        "no_signal_per_step": {str(k): v for k, v in no_signal.items()},
        "alarms": alarms(metrics, evals, weights, no_signal),
    }
    if write:
        (run.path / AUDIT_FILE).write_text(json.dumps(report, indent=1))
    return report


def reward_text(value) -> str:
    """A logged reward for display: two decimals, or "none" for a sample that got no reward."""
    return "none" if value is None else f"{value:.2f}"


def format_audit(report: dict) -> str:
    """The audit as a short text table."""
    lines = [f"audit of run {report['run']} (task {report['task']}; correct = {report['checker']})",
             f"{report['rollouts']} rollouts over {report['steps']} steps re-scored with today's checkers"
             + (f"; {report['unmatched']} could not be matched to their question" if report["unmatched"] else ""),
             "", f"  {'reward':16s} {'changed':>8s} {'mean before':>12s} {'mean after':>11s}"]
    for name in report["rescored"]:
        before, after = report["means"][name]
        cell = (lambda v: f"{v:.3f}" if v is not None else "-")
        lines.append(f"  {name:16s} {report['changed'][name]:8d} {cell(before):>12s} {cell(after):>11s}")
    if report["left_as_logged"]:
        lines.append(f"  not re-scored (kept as logged): {', '.join(report['left_as_logged'])}")
    for change in report["changes"][:5]:
        lines.append(f"    step {change['step']} {change['prompt_id']} #{change['index']}: {change['reward']} "
                     f"{reward_text(change['before'])} -> {reward_text(change['after'])}  "
                     f"...{change['completion'][-60:]!r}")
    lines += ["", f"gold answers the checker cannot read: {report['unreadable_golds']} of {report['golds_checked']}"]
    for g in report["unreadable_gold_items"][:5]:
        lines.append(f"    {g['id']}: {g['answer']!r} ({g['why']})")
    share = report["no_signal_share"]
    lines.append("groups with no learning signal (all rewards equal): "
                 + (f"{share:.0%} of groups, averaged over steps" if share is not None else "no rollouts"))
    lines += ["", "alarms:" + (" none" if not report["alarms"] else "")]
    lines += [f"  ! {a['alarm']}: {a['message']}" for a in report["alarms"]]
    return "\n".join(lines)
