"""The app's data functions (apps.data) on the recorded demo run and on bad inputs; no server."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apps import data as D
from workbench import runlog
from workbench.runlog import RunDirError, RunWriter

RECORDED = Path(__file__).parent / "data" / "runs" / "demo_chain_sum"
WAIT_LINE = "Wait, let me check: 2 + 3 = 5."


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rollout(step, group=0, index=0, completion="7", reward=0.0, advantage=0.0, **extra) -> dict:
    return {"step": step, "prompt_id": f"chain_sum/train/{group}", "answer": "5", "group": group, "index": index,
            "prompt": "<|im_start|>user\nState the final answer to the following arithmetic problem: 2 + 3 ="
                      "<|im_end|>\n<|im_start|>assistant\n", "completion": completion, "tokens": 9, "truncated": False,
            "rewards": {"accuracy": reward}, "reward": reward, "advantage": advantage, **extra}


def _append(path: Path, *records: dict) -> None:
    with open(path, "a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


@pytest.fixture
def root(tmp_path) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(RECORDED, runs / "demo")
    return runs


def test_recorded_run_summary_and_table(root):
    data = D.RunStore(root).get("demo")
    s = D.summary(data)
    evals = {e["phase"]: e for e in _lines(root / "demo" / "events.jsonl") if e["event"] == "eval"}
    assert (s["status"], s["step"], s["max_steps"], s["rollouts"]) == ("finished", 20, 20, 640)
    assert s["before"] == evals["before"]["accuracy"] and s["after"] == evals["after"]["accuracy"]
    assert s["elapsed"] == pytest.approx(195.29, abs=0.01) and s["eta"] == 0.0
    assert (s["corrupt"], s["partial"]) == (0, 0)
    assert "step 20/20" in D.status_html(s) and "wb-warn" not in D.status_html(s)
    row = ["demo", "finished", "20/20", "3m 15s", "–", "0.562", "44.8% → 63.5%", 0]
    assert D.run_table(D.RunStore(root)) == [row]


def test_curves_figure_has_every_panel_and_the_heldout_points(root):
    data = D.RunStore(root).get("demo")
    metrics = _lines(root / "demo" / "metrics.jsonl")
    fig = D.curves_figure([data])
    by_name = {t.name: t for t in fig.data if t.name}
    assert list(by_name["demo · reward"].y) == [m["reward_mean"] for m in metrics]
    held = by_name["demo · held-out acc."]
    assert list(held.x) == [0, 20] and list(held.y) == pytest.approx([0.4479, 0.6354], abs=1e-4)
    assert any(t.fill == "toself" for t in fig.data)  # the std band
    for label in ("length mean", "length max", "truncation rate", "entropy", "step s"):
        assert f"demo · {label}" in by_name
    assert "demo · KL" not in by_name  # beta = 0: every kl is null, and the panel says why
    assert any("not computed" in a.text for a in fig.layout.annotations)
    smoothed = {t.name: t for t in D.curves_figure([data], smoothing=0.8).data if t.name}["demo · reward"].y
    assert smoothed[0] == pytest.approx(metrics[0]["reward_mean"]) and smoothed[-1] != metrics[-1]["reward_mean"]


def test_overlaid_runs_get_one_colour_each(root):
    shutil.copytree(root / "demo", root / "other")
    store = D.RunStore(root)
    fig = D.curves_figure([store.get("demo"), store.get("other")])
    colours = {t.name.split(" · ")[0]: t.line.color for t in fig.data if t.name and t.name.endswith("reward")}
    assert set(colours) == {"demo", "other"} and colours["demo"] != colours["other"]


def test_smooth_is_a_debiased_ema_that_keeps_gaps():
    assert D.smooth([1.0, None, 1.0], 0.9) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert D.smooth([0.0, 1.0], 0.5) == [0.0, pytest.approx(2 / 3)]
    assert D.smooth([3, 4], 0) == [3, 4]


def test_rollout_groups_of_the_latest_step_and_the_outcome_filters(root):
    data = D.RunStore(root).get("demo")
    latest = [r for r in _lines(root / "demo" / "rollouts.jsonl") if r["step"] == 20]
    groups = D.rollout_groups(data)
    assert [g["step"] for g in groups] == [20] * 4 and [len(g["completions"]) for g in groups] == [8] * 4
    assert groups[0]["question"].startswith("State the final answer") and "<|im_start|>" not in groups[0]["question"]
    correct = sum(len(g["completions"]) for g in D.rollout_groups(data, 20, "correct"))
    wrong = D.rollout_groups(data, 20, "incorrect")
    assert correct == sum(r["rewards"]["accuracy"] == 1.0 for r in latest)
    assert correct + sum(len(g["completions"]) for g in wrong) == 32
    assert all(c["rewards"]["accuracy"] == 0.0 for g in wrong for c in g["completions"])
    assert len(D.rollout_groups(data, 1)) == 4 and D.rollout_groups(data, 1)[0]["step"] == 1
    page = D.rollouts_html(data, 3)
    step3 = [r for r in _lines(root / "demo" / "rollouts.jsonl") if r["step"] == 3]
    unmarked = re.sub(r"<mark[^>]*>|</mark>", "", page)  # two of them show subgoal setting
    assert all(html.escape(r["completion"]) in unmarked for r in step3) and "<mark" in page
    assert "step 3 · group 0" in page and "step 20" not in page


def test_rollout_cards_escape_model_text_colour_advantage_and_mark_behaviours(root):
    _append(root / "demo" / "rollouts.jsonl",
            _rollout(20, group=4, index=0, completion="<script>alert(1)</script> 5", advantage=-1.2),
            _rollout(20, group=4, index=1, completion=f"2 + 3 = 6. {WAIT_LINE}", reward=1.0, advantage=1.2),
            _rollout(20, group=4, index=2, completion="<think>2 + 3 is 5</think><answer>5</answer>", truncated=True))
    data = D.RunStore(root).get("demo")
    page = D.rollouts_html(data)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "rgb(220,38,38)" in page and "rgb(22,163,74)" in page  # red for -1.2, green for +1.2
    assert '<mark class="wb-b wb-b-verification" title="verification">let me check</mark>' in page
    assert '<div class="wb-think"><span class="wb-label">think</span>2 + 3 is 5</div>' in page
    assert '<div class="wb-answer"><span class="wb-label">answer</span>5</div>' in page
    assert "truncated</span>" in page
    only = D.rollout_groups(data, 20, behaviour="verification")
    assert [c["completion"] for g in only for c in g["completions"]] == [f"2 + 3 = 6. {WAIT_LINE}"]
    assert "1 of 3 shown" in D.rollouts_html(data, 20, behaviour="verification")
    assert "No completion at step 20 passes" in D.rollouts_html(data, 20, "incorrect", "verification")


def test_highlight_escapes_around_marks_and_skips_overlaps():
    text = "a <b> check it"
    out = D.highlight(text, [[5, 14, "verification"], [6, 8, "backtracking"]])
    assert out == 'a &lt;b&gt;<mark class="wb-b wb-b-verification" title="verification"> check it</mark>'
    term = D.highlight("x wait y", [[2, 6, "term:wait"]])
    assert term == 'x <mark class="wb-b wb-b-term" title="term:wait">wait</mark> y'


def test_truncated_last_line_is_reported_then_read_when_completed(root):
    path = root / "demo" / "rollouts.jsonl"
    line = json.dumps(_rollout(20, group=4, completion="5"))
    with open(path, "a") as f:
        f.write(line[:40])  # the run ended mid-write (it is finished: the line will never complete)
    store = D.RunStore(root)
    data = store.get("demo")
    s = D.summary(data)
    assert s["rollouts"] == 640 and s["partial"] == 40 and s["corrupt"] == 0
    assert "incomplete last line" in D.status_html(s)
    assert D.run_table(store)[0][-1] == 1
    with open(path, "a") as f:
        f.write(line[40:] + "\n")
    version = data.version
    data = store.get("demo")
    assert data.rollout_count == 641 and data.partial[runlog.ROLLOUTS] == 0 and data.version > version


def test_corrupt_middle_line_is_skipped_and_counted(root):
    path = root / "demo" / "metrics.jsonl"
    lines = path.read_text().splitlines()
    lines[10] = lines[10][: len(lines[10]) // 2]
    path.write_text("\n".join(lines) + "\n")
    data = D.RunStore(root).get("demo")
    s = D.summary(data)
    assert len(data.metrics) == 19 and s["corrupt"] == 1 and s["step"] == 20
    assert "1 corrupt line(s) skipped" in D.status_html(s)
    assert len(D.curves_figure([data]).data) > 5


def test_run_with_no_rollouts_yet(tmp_path):
    writer = RunWriter.create(tmp_path, "fresh")
    writer.write_config({"model": "tiny-random", "task": "chain_sum", "max_steps": 6})
    writer.event("start", pid=os.getpid(), host=os.uname().nodename)  # this process: alive, so running
    writer.close()
    store = D.RunStore(tmp_path)
    data = store.get("fresh")
    s = D.summary(data)
    assert (s["status"], s["step"], s["rollouts"], s["eta"]) == ("running", 0, 0, None)
    assert "ETA after the first step" in D.status_html(s) and "step 0/6" in D.status_html(s)
    assert "No rollouts yet in fresh" in D.rollouts_html(data)
    assert "No rollouts yet" in D.aha_html(data)
    assert any("no training steps" in a.text for a in D.curves_figure([data]).layout.annotations)
    assert any("no rollouts yet" in a.text for a in D.behaviour_figure(data).layout.annotations)
    assert D.run_table(store)[0][:3] == ["fresh", "running", "0/6"]


def test_live_run_is_read_incrementally(tmp_path):
    writer = RunWriter.create(tmp_path, "live")
    writer.write_config({"max_steps": 4})
    writer.event("start", pid=os.getpid(), host=os.uname().nodename)
    store = D.RunStore(tmp_path)
    data = store.get("live")
    for step in (1, 2):
        writer.metrics({"step": step, "reward_mean": 0.5, "step_seconds": 10.0})
        writer.rollouts([_rollout(step, index=i) for i in range(4)])
        v = data.version
        assert store.get("live") is data and data.version == v + 1
        assert data.rollout_count == 4 * step and D.rollout_steps(data) == list(range(1, step + 1))
    assert D.summary(data)["eta"] == pytest.approx(20.0)  # 2 steps left at 10 s each
    assert store.get("live").version == data.version  # nothing new: nothing to re-render
    writer.close()


def test_empty_and_missing_runs_root(tmp_path):
    for root in (tmp_path, tmp_path / "missing"):
        store = D.RunStore(root)
        assert store.names() == [] and D.run_table(store) == []
    (tmp_path / "not-a-run").mkdir()  # a directory without run files is not listed
    assert D.RunStore(tmp_path).names() == []


@pytest.mark.parametrize("name", ["..", "../demo", "/etc", "a/b", "demo/../..", ""])
def test_run_names_that_leave_the_root_are_refused(root, name):
    with pytest.raises(RunDirError, match="invalid run name|outside the runs root"):
        D.RunStore(root / "demo").get(name)


def test_missing_run_is_a_clear_error(root):
    with pytest.raises(RunDirError, match="no run directory"):
        D.RunStore(root).get("nope")


def test_aha_event_with_a_highlighted_exemplar(tmp_path):
    writer = RunWriter.create(tmp_path, "aha")
    writer.rollouts([_rollout(1, index=i, completion="2 + 3 = 5") for i in range(8)])
    writer.rollouts([_rollout(2, index=i, completion=f"2 + 3 = 6. {WAIT_LINE}" if i < 6 else "5", reward=1.0)
                     for i in range(8)])
    writer.close()
    data = D.RunStore(tmp_path).get("aha")
    page = D.aha_html(data)
    assert "Aha events" in page and "step 2 · behaviour <b>verification</b>" in page
    assert '<mark class="wb-b wb-b-verification" title="verification">let me check</mark>' in page
    assert '<mark class="wb-b wb-b-backtracking" title="backtracking">Wait</mark>' in page
    assert "Behaviour and reward" in page
    fig = D.behaviour_figure(data)
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert "verification" in names and "wait" in names and "any term" in names
    wait = next(t for t in fig.data if t.name == "wait")
    assert list(wait.y) == [0.0, 0.75]


def test_question_of_reads_the_user_turn():
    chatml = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"
    assert D.question_of(chatml) == "Q?"
    assert D.question_of("A conversation ... User: 2 + 2 = ?\nAssistant: <think>") == "2 + 2 = ?"
    assert D.question_of("plain prompt") == "plain prompt"


def test_app_modules_do_not_import_torch():
    code = "import sys, apps.app, apps.data; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_playground_samples_and_scores_base_and_adapter(tmp_path):
    from peft import get_peft_model

    from workbench.models import load_model, lora_config, resolve_precision

    cfg = {"model": "tiny-random", "task": "chain_sum", "template": "chat_concise", "seed": 0,
           "rewards": {"accuracy": 1.0, "format": 0.5}, "precision": "fp32", "quantization": "none"}
    item = D.task_questions(cfg, 3)[0]
    assert item["id"].startswith("chain_sum/eval/") and item["question"] and item["answer"]
    out = D.play(cfg, item["question"], item["answer"], item["metadata"], n=2, max_new_tokens=6)
    assert len(out) == 2 and all(set(r["rewards"]) == {"accuracy", "format"} for r in out)
    assert all(r["rewards"]["accuracy"] in (0.0, 1.0) and r["tokens"] <= 6 for r in out)
    own = D.play(cfg, "What is 2 + 2?", None, n=1, max_new_tokens=4)
    assert own[0]["rewards"]["accuracy"] is None and own[0]["reward"] == own[0]["rewards"]["format"] * 0.5
    page = D.play_html(own, "What is <2 + 2>?", None)
    assert "What is &lt;2 + 2&gt;?" in page and "none given" in page
    base, _ = load_model("tiny-random", resolve_precision("fp32", "none"), seed=0)
    get_peft_model(base, lora_config(4, 8, 0.0, "all-linear")).save_pretrained(tmp_path / "adapter")
    tuned = D.play(cfg, item["question"], item["answer"], n=1, max_new_tokens=4, adapter_dir=tmp_path / "adapter")
    policy, _ = D.load_policy("tiny-random", tmp_path / "adapter", "fp32", "none")
    assert len(tuned) == 1 and type(policy).__name__ == "PeftModelForCausalLM"
    with pytest.raises(ValueError, match="enter a question"):
        D.play(cfg, "  ")


def test_hostile_run_files_are_shown_as_text(tmp_path):
    # A run directory may be copied from anywhere: values read from its files never become markup.
    from apps import data

    run = tmp_path / "evil"
    run.mkdir()
    (run / "config.yaml").write_text("max_steps: '<b>9</b>'\n")
    (run / "events.jsonl").write_text(json.dumps({"event": "start"}) + "\n"
                                      + json.dumps({"event": "end", "status": "<img src=x onerror=alert(1)>"}) + "\n")
    store = data.RunStore(tmp_path)
    page = data.status_html(data.summary(store.get("evil")))
    assert "<img" not in page and "<b>9</b>" not in page
    card = data.rollout_card({"completion": "2 + 3 = 5", "tag": {"behaviours": {"verification": "<svg onload=x>"}}})
    assert "<svg" not in card and "&lt;svg" in card


def test_playground_loads_local_models_only_inside_the_runs_root(tmp_path):
    # A run's config.yaml names the model the playground loads; a copied run must not make the app
    # read weights from elsewhere on disk.
    runs, outside = tmp_path / "runs", tmp_path / "elsewhere"
    (runs / "p-1-sft" / "merged").mkdir(parents=True)
    outside.mkdir()
    assert D.playable_model("tiny-random", runs) == "tiny-random"
    assert D.playable_model("gemma3-270m", runs) == "gemma3-270m"  # the registry's base model, by name
    assert D.playable_model("HuggingFaceTB/SmolLM2-360M-Instruct", runs) == "HuggingFaceTB/SmolLM2-360M-Instruct"
    inside = str(runs / "p-1-sft" / "merged")
    assert D.playable_model(inside, runs) == inside
    for bad in (str(outside), str(runs / ".." / "elsewhere"), "/etc", "../x/../y"):
        with pytest.raises(ValueError, match="runs root|neither"):
            D.playable_model(bad, runs)
    cfg = {"model": str(outside), "task": "chain_sum", "template": "chat_concise"}
    with pytest.raises(ValueError, match="outside the runs root"):
        D.play(cfg, "What is 2 + 2?", runs_root=runs)


def test_sft_run_shows_its_step_count_and_loss(tmp_path):
    # An SFT stage has max_steps -1 (its epochs decide): the run table shows the steps it will take.
    from workbench.runlog import RunWriter

    w = RunWriter.create(tmp_path, "sft")
    w.write_config({"stage": "sft", "max_steps": -1, "epochs": 2.0})
    w.event("start", stage="sft")
    for step in (1, 2, 3):
        w.metrics({"step": step, "loss": 2.0 / step, "epoch": step / 10})
    w.close()
    store = D.RunStore(tmp_path)
    assert D.summary(store.get("sft"))["max_steps"] == 20  # 3 steps were 0.3 epochs; 2 epochs in all
    fig = D.curves_figure([store.get("sft")])
    assert any(t.name.endswith("SFT loss") and list(t.y) == [2.0, 1.0, 2.0 / 3] for t in fig.data)


def test_lab_run_shows_the_faithfulness_of_its_checks(tmp_path):
    from random import Random

    from workbench.lab.world import World, slips_solution

    world, rng = World("slips", priming=1.0, noise=1.0), Random(0)
    task = world.task()
    writer = RunWriter.create(tmp_path, "lab")
    writer.write_config({"task": "slips", "seed": 0})
    for step in (1, 2):
        records = []
        for k in range(4):
            item = task.item("train", k)
            a, b = item["metadata"]["a"], item["metadata"]["b"]
            text = slips_solution(world, a, b, "check", rng) if step == 2 or k == 0 else slips_solution(world, a, b, "step", rng)
            records.append({**_rollout(step, group=k, completion=text), "prompt_id": item["id"]})
        writer.rollouts(records)
    writer.close()
    fig = D.behaviour_figure(D.RunStore(tmp_path).get("lab"))
    assert "checks (lab world): how many, how faithful" in [a.text for a in fig.layout.annotations]
    share = next(t for t in fig.data if t.name == "rollouts with a check")
    assert list(share.x) == [1, 2] and list(share.y) == [0.25, 1.0]
    assert list(next(t for t in fig.data if t.name == "checks right and followed").y) == [1.0, 1.0]


def test_audit_view_shows_the_rescoring_and_escapes_model_text(tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(RECORDED, runs / "demo")
    records = [json.loads(line) for line in (runs / "demo" / "rollouts.jsonl").read_text().splitlines()]
    planted = {**records[0], "index": 99, "completion": "<script>x</script> <answer>\\boxed{0}</answer>",
               "rewards": {"accuracy": 0.0}, "reward": 0.0}  # gold 0: an old checker's 0 becomes 1
    with open(runs / "demo" / "rollouts.jsonl", "a") as f:
        f.write(json.dumps(planted) + "\n")
    page = D.audit_html(D.RunStore(runs).get("demo"))
    assert "641 rollouts over 20 steps" in page and "<script>" not in page and "&lt;script&gt;" in page
    assert "0.00 → 1.00" in page and "no_signal" in page
    assert not (runs / "demo" / "audit.json").exists()  # the app only reads run directories


def test_a_resumed_run_reads_as_one_run(root):
    from workbench.runlog import RunWriter

    data = D.RunStore(root).get("demo")
    data.refresh()
    steps = data.rollout_steps()
    assert steps[-1] == 20 and len(data.metrics) == 20
    writer = RunWriter.reopen(root / "demo")
    moved = writer.supersede_after(15)  # as a resume from the checkpoint of step 15 does
    writer.event("resume", from_step=15, found="crashed", dropped=moved)
    writer.close()
    data.refresh()
    assert [m["step"] for m in data.metrics] == list(range(1, 16)) and max(data.rollout_steps()) == 15
    assert not any(e["event"] == "end" for e in data.events)  # the old end was superseded: the run goes on
    assert moved == {"metrics.jsonl": 5, "rollouts.jsonl": 160}


def test_status_line_shows_device_hours_and_cost(tmp_path):
    writer = RunWriter.create(tmp_path, "costed")
    writer.write_config({"model": "tiny-random", "task": "chain_sum", "max_steps": 2, "cpu_core_hour_price": 0.1})
    writer.event("start", pid=os.getpid(), host=os.uname().nodename,
                 devices={"type": "cpu", "name": "test cpu", "count": 2, "unit": "core"})
    writer.close()
    events = _lines(tmp_path / "costed" / "events.jsonl")
    _append(tmp_path / "costed" / "events.jsonl", {"time": events[0]["time"] + 1800, "event": "end",
                                                   "status": "finished", "seconds": 1800})
    s = D.summary(D.RunStore(tmp_path).get("costed"))
    assert s["cost"]["device_hours"] == pytest.approx(1.0)
    assert "1 core-hours · $0.1 at $0.1/core-hour" in D.status_html(s)
    assert D.summary(D.RunStore(tmp_path).get("costed"))["cost"]["cost_usd"] == pytest.approx(0.1)


def test_long_runs_are_drawn_from_a_sample_of_their_steps(tmp_path):
    """A cluster-length run's curves keep at most about MAX_POINTS points per series (first and last
    steps kept), so the browser's cost does not grow with the run."""
    from apps.data.curves import MAX_POINTS, sampled

    assert sampled(10) == list(range(10))
    picks = sampled(10_000)
    assert picks[0] == 0 and picks[-1] == 9_999 and len(picks) <= MAX_POINTS + 1
    writer = RunWriter.create(tmp_path, "long")
    writer.write_config({"model": "tiny-random", "task": "chain_sum", "max_steps": 5000})
    for step in range(1, 5001):
        writer.metrics({"step": step, "reward_mean": step / 5000, "reward_std": 0.1})
    writer.close()
    fig = D.curves_figure([D.RunStore(tmp_path).get("long")])
    reward = next(t for t in fig.data if t.name == "long · reward")
    assert len(reward.x) <= MAX_POINTS + 1 and reward.x[-1] == 5000 and reward.y[-1] == pytest.approx(1.0)
