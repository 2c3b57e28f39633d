"""`workbench audit`: re-scoring logged rollouts with today's checkers, unreadable golds, alarms."""

import json
import shutil
from pathlib import Path

import yaml

from workbench.analysis.audit import AUDIT_FILE, audit_run, format_audit
from workbench.cli import main
from workbench.tasks import get_task

DEMO = Path(__file__).parent / "data" / "runs" / "demo_chain_sum"


def test_audit_of_the_recorded_demo_run(tmp_path, capsys):
    run = shutil.copytree(DEMO, tmp_path / "demo")
    assert main(["audit", str(run)]) == 0
    out = capsys.readouterr().out
    report = json.loads((run / AUDIT_FILE).read_text())
    assert report["rollouts"] == 640 and report["steps"] == 20 and report["unmatched"] == 0
    # The demo was recorded when reasoning-gym's substring credit counted as accuracy: every rollout
    # that got a fraction is listed and now gets 0; so is "... 3/5 6/7" against gold 7, once read
    # as 7 and now as the fraction 6/7 it ends with.
    logged = [json.loads(line) for line in (run / "rollouts.jsonl").open()]
    partial = {(r["step"], r["prompt_id"], r["index"]) for r in logged if 0 < r["rewards"]["accuracy"] < 1}
    listed = {(c["step"], c["prompt_id"], c["index"]): c for c in report["changes"]}
    assert partial and partial <= set(listed) and report["changed"]["accuracy"] == len(listed) == len(partial) + 1
    assert {c["after"] for c in listed.values()} == {0.0}
    assert [c["completion"] for k, c in listed.items() if k not in partial] == ["1E3 in 6/5ding  3/5 6/7"]
    assert report["unreadable_golds"] == 0 and report["golds_checked"] > 80  # train and held-out questions
    assert "accuracy" in out and "alarms" in out


def _write_run(path: Path, rollouts: list[dict], metrics: list[dict], rewards: dict, evals=()) -> Path:
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump({"task": "chain_sum", "seed": 0, "rewards": rewards,
                                                      "max_completion_length": 64}))
    (path / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rollouts))
    (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    (path / "events.jsonl").write_text("".join(json.dumps({"event": "eval", **e}) + "\n" for e in evals))
    return path


def test_a_planted_checker_change_is_found_and_nothing_else(tmp_path):
    task = get_task("chain_sum")
    item = next(it for it in task.items("train", 50) if it["answer"].startswith("-"))
    gold = item["answer"]
    # An old checker's values: a boxed tagged answer got partial credit and a U+2212 minus got 0
    # (both right: listed); a right plain answer got 1 and a wrong one 0 (unchanged: not listed).
    completions = [(f"<answer>\\boxed{{{gold}}}</answer>", 0.2), (f"<answer>{gold}</answer>", 1.0),
                   ("<answer>\u2212" + gold[1:] + "</answer>", 0.0), (f"<answer>{gold[1:]}</answer>", 0.0),
                   (f"<answer>{gold}</answer>", None)]  # failed when logged (no reward), right today
    rollouts = [{"step": 1, "prompt_id": item["id"], "prompt": "Q", "answer": gold, "group": 0, "index": i,
                 "completion": c, "rewards": {"accuracy": v}, "reward": v} for i, (c, v) in enumerate(completions)]
    run = _write_run(tmp_path / "planted", rollouts, [{"step": 1, "reward_mean": 0.3}], {"accuracy": 1.0})
    report = audit_run(run)
    assert {(c["index"], c["before"], c["after"]) for c in report["changes"]} == {(0, 0.2, 1.0), (2, 0.0, 1.0),
                                                                                  (4, None, 1.0)}
    assert report["changed"]["accuracy"] == 3 and report["means"]["accuracy"] == [0.3, 0.75]
    assert "none -> 1.00" in format_audit(report)


def _metrics(n, **series):
    return [{"step": s + 1, **{k: f(s) for k, f in series.items()}} for s in range(n)]


def test_alarms_fire_on_the_patterns_they_name(tmp_path):
    n = 20
    metrics = _metrics(n, reward_mean=lambda s: 0.1 + 0.04 * s, **{
        "rewards/format/mean": lambda s: 0.05 * s, "rewards/accuracy/mean": lambda s: 0.3,
        "completion_length_mean": lambda s: 100 - 4.5 * s, "truncation_rate": lambda s: 0.0})
    evals = [{"phase": p, "items": [{"id": f"q{i}", "correct": i % 2 == 0} for i in range(40)]} for p in ("before", "after")]
    rollouts = [{"step": s, "prompt_id": f"chain_sum/train/{s}", "group": 0, "index": i, "completion": "", "reward": 1.0,
                 "rewards": {"accuracy": 1.0, "format": 0.0}} for s in range(1, n + 1) for i in range(4)]
    run = _write_run(tmp_path / "alarming", rollouts, metrics, {"accuracy": 1.0, "format": 10.0}, evals)
    fired = {a["alarm"] for a in audit_run(run)["alarms"]}
    assert fired == {"reward_without_heldout", "format_without_accuracy", "length_collapse", "dominant_component",
                     "no_signal"}
    quiet = _metrics(n, reward_mean=lambda s: 0.3, **{"rewards/accuracy/mean": lambda s: 0.3,
                                                    "completion_length_mean": lambda s: 50.0})
    varied = [{**r, "reward": float(r["index"] % 2)} for r in rollouts]
    run = _write_run(tmp_path / "quiet", varied, quiet, {"accuracy": 1.0})
    report = audit_run(run)
    assert report["alarms"] == []
    assert "alarms: none" in format_audit(report)


def test_audit_refuses_what_is_not_a_grpo_run(tmp_path, capsys):
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "config.yaml").write_text(yaml.safe_dump({"stage": "sft", "task": "chain_sum"}))
    for target in (tmp_path / "sft", tmp_path / "missing"):
        assert main(["audit", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error:")
