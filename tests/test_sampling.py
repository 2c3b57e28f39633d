"""Rejection sampling and the SFT JSONL format it writes."""

import json

import pytest

import workbench.analysis.evaluate
from apps import data as app_data
from workbench.cli.data import cmd_sample
from workbench.errors import WorkbenchError
from workbench.models import TINY_MODEL, load_model, resolve_precision
from workbench.rewards.extract import extract_answer
from workbench.rewards.rules import FormatReward
from workbench.runlog import Run
from workbench.stages.rejection_sampling import DATA, REJECT_REASONS, Filters, judge, rejection_sample, sample_to_run
from workbench.stages.sft_data import read_sft_jsonl, write_jsonl
from workbench.tasks import get_task
from workbench.templates import system_prompt

Q = "State the final answer to the following arithmetic problem: {} ="


@pytest.fixture(scope="module")
def tiny():
    return load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))


@pytest.fixture(scope="module")
def chain_sum():
    return get_task("chain_sum")


def _gold(task, question_expr):
    item = next(it for it in task.items("train", 300) if it["question"] == Q.format(question_expr))
    return item


# --- The filters -----------------------------------------------------------------------------------


def test_filters_reject_for_the_right_reason(chain_sum):
    item = _gold(chain_sum, "0 - 4")  # gold -4
    f = Filters(max_tokens=40)
    good = "<think>\nStart at 0 and count down 4. So it is -4.\n</think>\n<answer>-4</answer>"

    def reason(text, tokens=20, truncated=False, filters=f):
        return judge(text, item, chain_sum, tokens=tokens, truncated=truncated, filters=filters)

    assert reason(good)["reason"] is None
    assert reason(good)["rewards"] == {"accuracy": 1.0, "format": 1.0, "language": 1.0}
    assert reason(good.replace("-4</answer>", "4</answer>"))["reason"] == "wrong"
    assert reason("The answer is -4.")["reason"] == "format"
    assert reason("<think>\n从零开始往下数四个数\n</think>\n<answer>-4</answer>")["reason"] == "language"
    assert reason(good, tokens=41)["reason"] == "length"
    assert reason(good, truncated=True)["reason"] == "truncated"
    # Every failing check is listed, in REJECT_REASONS order; the first one is the reason.
    both = reason("<think>零</think>4", truncated=True)
    assert both["failed"] == ["truncated", "wrong", "format", "language"] and both["reason"] == "truncated"
    # Without the format filter, a correct untagged answer passes (the last number is the answer).
    assert reason("The answer is -4.", filters=Filters(require_format=False))["reason"] is None


def test_filter_settings_are_checked():
    with pytest.raises(WorkbenchError, match="unknown target language 'klingon'"):
        Filters(language="klingon")
    with pytest.raises(WorkbenchError, match="min_language"):
        Filters(min_language=1.5)


# --- Bookkeeping, with hand-written samples ----------------------------------------------------------


def _fake_generate(completions_for):
    """A stand-in for evaluate.generate: completions_for(prompt) -> list of (text, tokens, truncated)."""
    calls = {}

    def generate(model, tokenizer, prompts, max_new_tokens, **kwargs):
        out = []
        for p in prompts:
            n = calls.get(p, 0)
            calls[p] = n + 1
            text, tokens, truncated = completions_for(p)[n]
            out.append({"completion": text, "tokens": tokens, "truncated": truncated})
        return out

    generate.calls = calls
    return generate


def test_accepted_rows_verify_and_stats_add_up(monkeypatch, tiny, chain_sum):
    _, tok = tiny

    def completions_for(prompt):
        gold = next(it["answer"] for it in chain_sum.items("train", 300) if it["question"] in prompt)
        right = f"<think>\nI work it out and check it.\n</think>\n<answer>{gold}</answer>"
        return [(right, 20, False), ("  " + right.replace("\n", " \n "), 21, False),  # a whitespace duplicate
                (right.replace(f">{gold}<", ">99<"), 20, False), ("no tags " + gold, 5, False),
                (right.replace("I work", "我来算"), 20, False), (right, 300, False), (right[:20], 64, True)]

    fake = _fake_generate(completions_for)
    monkeypatch.setattr(workbench.analysis.evaluate, "generate", fake)
    r = rejection_sample(None, tok, chain_sum, n_questions=5, k=7, max_new_tokens=64, max_tokens=200,
                         provenance={"model": "m", "adapter": None, "step": 3}, progress=False)
    s = r.stats
    assert s["questions"] == 5 and s["samples"] == 35 and s["gold_parse_failures"] == 0
    assert s["accepted"] + sum(s["rejected"].values()) == s["samples"]
    assert s["accepted"] == 5 and s["questions_with_an_accepted_sample"] == 5
    assert s["rejected"] == {"truncated": 5, "wrong": 5, "format": 5, "language": 5, "length": 5, "duplicate": 5}
    assert len({rec["prompt"] for rec in r.records}) == 5  # distinct questions only
    for row in r.rows:
        system, user, assistant = row["messages"]
        assert system == {"role": "system", "content": system_prompt("chat_think")}
        item = next(it for it in chain_sum.items("train", 300) if it["id"] == row["provenance"]["item_id"])
        assert item["question"] == user["content"]
        assert chain_sum.score(extract_answer(assistant["content"], "number"), item) == 1.0
        assert FormatReward()([assistant["content"]]) == [1.0]
        keys = ("model", "adapter", "step", "task", "sample_index", "reward", "temperature")
        assert {k: row["provenance"][k] for k in keys} == {"model": "m", "adapter": None, "step": 3, "task": "chain_sum",
                                                           "sample_index": 0, "reward": 1.0, "temperature": 0.6}
    rec = r.records[3]
    assert rec["accepted"] is False and rec["reject_reason"] == "format" and rec["advantage"] is None
    assert set(rec) >= {"step", "prompt_id", "prompt", "answer", "group", "index", "completion", "tokens",
                        "truncated", "rewards", "reward", "traces"}


def test_unparseable_gold_is_counted_not_sampled(monkeypatch, tmp_path, tiny):
    _, tok = tiny
    path = tmp_path / "mixed.jsonl"
    rows = [{"question": "What is 2 + 2?", "answer": "4"}, {"question": "What is 3 + 3?", "answer": " "},
            {"question": "What is 5 + 1?", "answer": "6"}, {"question": "What is 9 - 9?", "answer": ""}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = get_task(str(path), heldout_fraction=0.0)
    fake = _fake_generate(lambda p: [("<think>\nadd\n</think>\n<answer>4</answer>", 9, False)] * 2)
    monkeypatch.setattr(workbench.analysis.evaluate, "generate", fake)
    r = rejection_sample(None, tok, task, n_questions=10, k=2, max_new_tokens=16, progress=False)
    s = r.stats
    assert s["questions"] == 4 and s["gold_parse_failures"] == 2 and s["samples"] == 4
    assert not any("3 + 3" in p or "9 - 9" in p for p in fake.calls)  # never sampled, never scored
    # "4" is right for 2 + 2 only; its second sample is the same text.
    assert s["accepted"] == 1 and s["rejected"]["duplicate"] == 1 and s["rejected"]["wrong"] == 2


# --- With a real (tiny) model ---------------------------------------------------------------------


def test_tiny_model_stats_add_up(tiny, chain_sum):
    model, tok = tiny
    r = rejection_sample(model, tok, chain_sum, n_questions=3, k=2, max_new_tokens=8, progress=False, seed=0)
    s = r.stats
    assert s["samples"] == 6 == len(r.records)
    assert s["accepted"] + sum(s["rejected"].values()) == s["samples"]
    assert set(s["rejected"]) == set(REJECT_REASONS)
    for row in r.rows:  # random weights rarely produce one, but any that is kept must verify
        assert FormatReward()([row["messages"][-1]["content"]]) == [1.0]


def test_sample_to_run_leaves_a_run_the_app_reads(tmp_path, tiny, chain_sum):
    model, tok = tiny
    r = sample_to_run(model=model, tokenizer=tok, task="chain_sum", runs_root=tmp_path, run_name="s1",
                      n_questions=3, k=2, max_new_tokens=8, progress=False, run_info={"pipeline": "p"})
    run = Run(tmp_path / "s1")
    assert run.status() == "finished" and r.run_dir == str(run.path)
    cfg = run.config()
    assert cfg["stage"] == "sample" and cfg["task"] == "chain_sum" and cfg["k"] == 2 and cfg["pipeline"] == "p"
    events = [e["event"] for e in run.events()]
    assert events[0] == "start" and "sample_summary" in events and events[-1] == "end"
    start = run.events()[0]
    assert {"model", "task", "pid", "host"} <= set(start)
    rollouts = run.rollouts()
    assert len(rollouts) == 6 and {rec["step"] for rec in rollouts} == {0}
    for rec in rollouts:
        assert set(rec["rewards"]) == {"accuracy", "format", "language"}
        assert rec["advantage"] is None and "accepted" in rec and "reject_reason" in rec
        assert rec["traces"]["version"] and isinstance(rec["group"], int) and rec["index"] in (0, 1)
    summary = next(e for e in run.events() if e["event"] == "sample_summary")
    assert summary["samples"] == 6 and summary["accepted"] + sum(summary["rejected"].values()) == 6
    assert r.data_path == str(run.path / DATA)
    assert (run.path / DATA).read_text().count("\n") == len(r.rows)

    store = app_data.RunStore(tmp_path)
    data = store.get("s1")
    s = app_data.summary(data)
    assert s["status"] == "finished" and s["rollouts"] == 6 and s["task"] == "chain_sum"
    page = app_data.rollouts_html(data)
    assert "0 - 4" in page and "group 0" in page
    assert app_data.run_table(store)[0][:2] == ["s1", "finished"]


def test_a_crash_is_recorded_then_raised(monkeypatch, tmp_path, tiny):
    model, tok = tiny

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(workbench.analysis.evaluate, "generate", boom)
    with pytest.raises(RuntimeError, match="out of memory"):
        sample_to_run(model=model, tokenizer=tok, runs_root=tmp_path, run_name="bad", n_questions=2, k=2,
                      max_new_tokens=8, progress=False)
    run = Run(tmp_path / "bad")
    assert run.status() == "crashed"
    assert [e["event"] for e in run.events()][-2:] == ["error", "end"]


def test_sample_to_run_refuses_unknown_options_before_making_a_run(tmp_path, tiny):
    model, tok = tiny
    with pytest.raises(WorkbenchError, match=r"unknown sampling option\(s\) \['kk'\]"):
        sample_to_run(model=model, tokenizer=tok, runs_root=tmp_path, run_name="x", kk=2)
    assert not (tmp_path / "x").exists()


def test_main_by_model_name_writes_run_and_file(tmp_path, capsys):
    out = tmp_path / "kept.jsonl"
    assert cmd_sample(["--model", TINY_MODEL, "--task", "chain_sum", "--n_questions", "2", "--k", "2",
                          "--max_new_tokens", "8", "--runs_root", str(tmp_path), "--run_name", "cli",
                          "--output", str(out), "--precision", "fp32", "--quantization", "none"]) == 0
    printed = capsys.readouterr().out
    assert "accepted" in printed and "truncated" in printed and "run directory" in printed
    assert out.exists() and Run(tmp_path / "cli").status() == "finished"
    with pytest.raises(WorkbenchError, match="nothing to write"):
        cmd_sample(["--model", TINY_MODEL])


# --- The SFT JSONL format --------------------------------------------------------------------------


def _conv(answer="4"):
    return {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": answer}],
            "provenance": {"source": "test"}}


def test_sft_round_trip_keeps_extra_keys(tmp_path):
    rows = [_conv(), {"prompt": "2+2?", "completion": "4", "provenance": {"x": 1}}, _conv("四")]
    path = write_jsonl(rows, tmp_path / "sub" / "d.jsonl")
    assert read_sft_jsonl(path) == rows
    assert not list(path.parent.glob(".*.tmp"))


def test_sft_errors_name_the_file_the_lines_and_the_problem(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(_conv()),
             json.dumps({"messages": [{"role": "user", "content": "2+2?"}]}),
             "{not json",
             "",
             json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}),
             json.dumps({"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}),
             json.dumps({"prompt": "q", "completion": ""}),
             json.dumps({"text": "hello"})]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(WorkbenchError) as e:
        read_sft_jsonl(path)
    msg = str(e.value)
    assert str(path) in msg and "6 invalid" in msg
    assert "line 2: messages end with a 'user' turn" in msg and "line 3: malformed JSON" in msg
    assert "line 5: the final assistant turn is empty" in msg and "line 6: messages[0] has role 'robot'" in msg
    assert "and 1 more" in msg
    rows = read_sft_jsonl(path, skip_invalid=True)
    assert rows == [_conv()]
    assert [n for n, _ in rows.skipped] == [2, 3, 5, 6, 7, 8]
    with pytest.raises(WorkbenchError, match="no SFT data file"):
        read_sft_jsonl(tmp_path / "missing.jsonl")
