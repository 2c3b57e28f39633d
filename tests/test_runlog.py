"""The run directory: written line by line, readable while written, safe against bad names."""

import json
import os

import pytest

from workbench.runlog import Run, RunDirError, RunWriter, list_runs, read_jsonl, safe_run_dir


def test_round_trip(tmp_path):
    w = RunWriter.create(tmp_path, "r")
    w.write_config({"task": "chain_sum", "max_steps": 2})
    w.event("start", pid=os.getpid(), host=os.uname().nodename)
    w.metrics({"step": 1, "reward_mean": 0.5, "kl": float("nan")})
    w.rollouts([{"step": 1, "completion": "ünïcode 7", "reward": 1.0}, {"step": 2, "completion": "x"}])
    run = Run.open(tmp_path, "r")
    assert run.config()["max_steps"] == 2
    assert run.metrics()[0]["reward_mean"] == 0.5
    assert run.metrics()[0]["kl"] is None  # NaN is written as null, which any JSON reader parses
    assert [r["completion"] for r in run.rollouts()] == ["ünïcode 7", "x"]
    assert len(run.rollouts(step=2)) == 1
    assert run.status() == "running"
    w.event("end", status="finished")
    w.close()
    assert run.status() == "finished"
    assert [r.name for r in list_runs(tmp_path)] == ["r"]


def test_partial_last_line_is_left_for_the_next_read(tmp_path):
    p = tmp_path / "m.jsonl"
    full = json.dumps({"step": 1}) + "\n"
    p.write_text(full + '{"step": 2, "rew')
    records, offset, corrupt = read_jsonl(p)
    assert records == [{"step": 1}] and corrupt == 0
    assert offset == len(full.encode())
    with open(p, "a") as f:
        f.write('ard": 1}\n')
    more, offset2, _ = read_jsonl(p, offset)
    assert more == [{"step": 2, "reward": 1}]
    assert offset2 == p.stat().st_size


def test_corrupt_line_is_counted_and_skipped(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"a": 1}\nnot json\n[1, 2]\n{"a": 2}\n')
    records, _, corrupt = read_jsonl(p)
    assert records == [{"a": 1}, {"a": 2}]
    assert corrupt == 2


def test_crashed_when_process_is_gone(tmp_path):
    w = RunWriter.create(tmp_path, "r")
    w.event("start", pid=2 ** 22 + 12345, host=os.uname().nodename)  # no such pid
    w.close()
    assert Run.open(tmp_path, "r").status() == "crashed"


def test_a_reused_pid_does_not_make_a_dead_run_look_alive(tmp_path):
    from workbench.runlog import process_identity

    me = process_identity()
    if me is None:
        pytest.skip("no /proc here: the PID alone is all there is")
    # This process's PID, alive, but recorded with another start time: a later process reused it.
    boot, ticks = me.rsplit(":", 1)
    for name, process, status in [("reused", f"{boot}:{int(ticks) + 1}", "crashed"), ("same", me, "running"),
                                  ("old", None, "running")]:
        w = RunWriter.create(tmp_path, name)
        w.event("start", pid=os.getpid(), host=os.uname().nodename, **({"process": process} if process else {}))
        w.close()
        assert Run.open(tmp_path, name).status() == status, name


@pytest.mark.parametrize("name", ["..", "../x", "/etc", "a/b", ""])
def test_names_that_leave_the_root_are_refused(tmp_path, name):
    with pytest.raises(RunDirError):
        safe_run_dir(tmp_path, name)


def test_existing_run_dir_is_not_overwritten(tmp_path):
    w = RunWriter.create(tmp_path, "r")
    w.event("start")
    w.close()
    with pytest.raises(RunDirError, match="already exists"):
        RunWriter.create(tmp_path, "r")


def test_unwritable_runs_root(tmp_path):
    # A path under a regular file cannot be created, even by root.
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RunDirError, match="not writable"):
        RunWriter.create(blocker / "runs", "r")


def test_links_out_of_the_run_directory_are_refused(tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"password": 1}\n')
    w = RunWriter.create(tmp_path / "runs", "r")
    w.event("start")
    w.close()
    (tmp_path / "runs" / "r" / "metrics.jsonl").symlink_to(secret)
    run = Run.open(tmp_path / "runs", "r")
    with pytest.raises(RunDirError, match="points outside"):
        run.metrics()
    assert run.events()[0]["event"] == "start"  # the run's own files still read


def test_generated_run_names_do_not_collide_within_one_second(tmp_path):
    # Two runs started in the same second used to get the same timestamped name; the second failed
    # with "run directory ... already exists" (seen in the aha-lab notebook's smoke runs).
    from workbench.config import WorkbenchConfig
    from workbench.lifecycle import default_run_name
    from workbench.runlog import unused_run_name

    assert unused_run_name(tmp_path, "a") == "a"
    (tmp_path / "a").mkdir()
    (tmp_path / "a-2").mkdir()
    assert unused_run_name(tmp_path, "a") == "a-3"
    cfg = WorkbenchConfig(runs_root=str(tmp_path))
    first = default_run_name(cfg)
    RunWriter.create(tmp_path, first)
    second = default_run_name(cfg)
    assert second != first and not (tmp_path / second).exists()
