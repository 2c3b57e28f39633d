"""rollouts.jsonl read through its index (workbench.runlog.RolloutLog): a step, or the curves, without
reading the log, and the same answers as reading every rollout, on the recorded demo run."""

import json
import random
from pathlib import Path

import pytest

from workbench.analysis import traces
from workbench.runlog import ROLLOUT_INDEX, ROLLOUTS, RolloutLog, Run, RunWriter

DEMO = Path(__file__).parent / "data" / "runs" / "demo_chain_sum" / ROLLOUTS
ROWS = [json.loads(line) for line in DEMO.read_text().splitlines()]


def written(tmp_path, rows=ROWS, seed=0) -> Run:
    """The demo's rollouts written as a trainer writes them, each step split in two writes at random."""
    rng = random.Random(seed)
    w = RunWriter.create(tmp_path, "r")
    w.event("start")
    for step in sorted({r["step"] for r in rows}):
        part = [r for r in rows if r["step"] == step]
        cut = rng.randint(0, len(part))
        w.rollouts(part[:cut], summarize=traces.step_summary)
        w.rollouts(part[cut:], summarize=traces.step_summary)
    w.close()
    return Run(tmp_path / "r")


def opened(run: Run) -> RolloutLog:
    log = RolloutLog(run, traces.step_summary, traces.merge_summaries)
    log.refresh()
    return log


def same_as_reading_every_rollout(log: RolloutLog, rows=ROWS) -> None:
    assert log.count == len(rows) and log.steps() == sorted({r["step"] for r in rows})
    for step in (1, 7, max(log.steps())):
        assert log.step_rollouts(step) == [r for r in rows if r["step"] == step]
    summaries = log.summaries()
    for got, want in zip(traces.curves_from_summaries(summaries), traces.step_curves(rows), strict=True):
        assert got.keys() == want.keys()
        assert all(got[k] == pytest.approx(want[k]) for k in got)
    assert rounded(traces.correlation_from_summaries(summaries)) == rounded(traces.reward_correlation(rows))
    assert traces.aha_from_summaries(summaries, log.step_rollouts) == traces.aha_events(rows)


def test_index_answers_as_reading_every_rollout(tmp_path):
    run = written(tmp_path)
    lines = (run.path / ROLLOUT_INDEX).read_text().splitlines()
    assert sum(json.loads(line)["n"] for line in lines) == len(ROWS) and len(lines) >= 20  # a line per step per write
    log = opened(run)
    assert log.end == (run.path / ROLLOUTS).stat().st_size
    same_as_reading_every_rollout(log)
    assert run.rollouts(step=3) == [r for r in ROWS if r["step"] == 3]  # the notebook reader, through the index


def test_a_run_without_an_index_is_read_from_the_log(tmp_path):
    run = written(tmp_path)
    (run.path / ROLLOUT_INDEX).unlink()  # an older run, or one whose resume dropped it
    same_as_reading_every_rollout(opened(run))


def test_bytes_no_index_line_covers_yet_are_read_once(tmp_path):
    """The writer writes rollouts, then their index line; a reader between the two reads the rollouts
    from the log, and the index line that follows does not count them twice."""
    run = written(tmp_path, [r for r in ROWS if r["step"] <= 10])
    log = opened(run)
    late = [r for r in ROWS if r["step"] > 10]
    w = RunWriter.reopen(run.path)
    w.rollouts(late[:50], summarize=traces.step_summary)
    index = (run.path / ROLLOUT_INDEX).read_text()
    (run.path / ROLLOUT_INDEX).write_text(index[:index.rstrip("\n").rfind("\n") + 1])  # its index lines not yet written
    log.refresh()
    (run.path / ROLLOUT_INDEX).write_text(index)  # now they are
    w.rollouts(late[50:], summarize=traces.step_summary)
    w.close()
    log.refresh()
    same_as_reading_every_rollout(log)


def test_a_gap_in_the_index_is_filled_from_the_log(tmp_path):
    run = written(tmp_path)
    lines = (run.path / ROLLOUT_INDEX).read_text().splitlines(keepends=True)
    (run.path / ROLLOUT_INDEX).write_text("".join(lines[:5] + lines[9:]))  # four index lines lost mid-run
    same_as_reading_every_rollout(opened(run))


def test_a_resume_drops_the_index_and_readers_rebuild_it(tmp_path):
    run = written(tmp_path)
    log = opened(run)
    w = RunWriter.reopen(run.path)
    assert w.supersede_after(12)["rollouts.jsonl"] == sum(r["step"] > 12 for r in ROWS)
    assert not (run.path / ROLLOUT_INDEX).exists()
    w.rollouts([r for r in ROWS if r["step"] == 13], summarize=traces.step_summary)  # the resumed run goes on
    w.close()
    log.refresh()
    same_as_reading_every_rollout(log, [r for r in ROWS if r["step"] <= 13])


def test_merged_summaries_equal_the_summary_of_the_whole_step():
    part = [r for r in ROWS if r["step"] == 20]
    for cut in (0, 1, 13, len(part)):
        merged = traces.merge_summaries(traces.step_summary(part[:cut]), traces.step_summary(part[cut:]))
        assert rounded(merged) == rounded(traces.step_summary(part))


def rounded(x):
    if isinstance(x, float):
        return round(x, 9)
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return x


def test_the_documented_duckdb_query_counts_what_python_counts(tmp_path):
    """VERIFIED_BUT_WRONG over rollouts.jsonl (DuckDB, out of core) against the same count in Python."""
    from workbench.analysis.query import VERIFIED_BUT_WRONG, rollouts_table

    rng = random.Random(1)
    rows = []
    for r in ROWS:  # some completions verify (a "Let me check" line), some of those still answer wrongly
        text = r["completion"] + ("\nLet me check: 2 + 3 = 5." if rng.random() < 0.3 else "")
        rows.append({**r, "completion": text, "traces": traces.tag(text, r["prompt"])})
    run = written(tmp_path, rows)
    got = rollouts_table(run.path).sql(VERIFIED_BUT_WRONG).fetchall()
    want = []
    for step in sorted({r["step"] for r in rows}):
        part = [r for r in rows if r["step"] == step]
        verified = [r for r in part if r["traces"]["behaviours"].get("verification", 0) > 0]
        want.append((step, sum(r["rewards"]["accuracy"] < 1 for r in verified), len(verified), len(part)))
    assert got == want and sum(w[2] for w in want) > 20 and sum(w[1] for w in want) > 5
