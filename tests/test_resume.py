"""Durable runs: SIGKILL then resume, Ctrl-C then resume, each against the same run uninterrupted.

Each run is a subprocess on the tiny model with one thread (OMP_NUM_THREADS=1): the trainer's
checkpoint restores the weights, optimizer, scheduler, RNG states and data position, and on one
thread float sums happen in the same order, so the resumed run is bit-identical to the one that
never stopped (rewards, advantages, completions, losses, gradient norms).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.runlog import Run

ARGS = ["--model", "tiny-random", "--max_steps", "6", "--save_steps", "2", "--eval_items", "4"]
METRIC_KEYS = ("step", "reward_mean", "reward_std", "loss", "grad_norm", "entropy")
ROLLOUT_KEYS = ("step", "prompt_id", "group", "index", "completion", "rewards", "reward", "advantage")


def _workbench(*args: str, env: dict | None = None, **popen):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "workbench", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _records(run: Path, name: str, keys) -> list[dict]:
    return [{k: r.get(k) for k in keys} for r in map(json.loads, (run / name).read_text().splitlines())]


def _wait_for(what, condition, proc, timeout=240):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    proc = _workbench("train", *ARGS, "--runs_root", str(root), "--run_name", "full")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return root / "full"


def _assert_same_as(run: Path, reference: Path) -> None:
    for name, keys in (("metrics.jsonl", METRIC_KEYS), ("rollouts.jsonl", ROLLOUT_KEYS)):
        assert _records(run, name, keys) == _records(reference, name, keys), name
    steps = [r["step"] for r in _records(run, "metrics.jsonl", ["step"])]
    assert steps == [1, 2, 3, 4, 5, 6]  # every step exactly once


def test_sigkill_then_resume_is_the_uninterrupted_run(uninterrupted, tmp_path):
    run = tmp_path / "killed"
    proc = _workbench("train", *ARGS, "--runs_root", str(tmp_path), "--run_name", "killed")
    checkpoint = run / "trainer" / "checkpoint-4" / "trainer_state.json"
    _wait_for("checkpoint 4", checkpoint.is_file, proc)
    # Let step 5 start writing (its rollouts come before its metrics line), then kill without warning.
    _wait_for("step 5's rollouts", lambda: len((run / "rollouts.jsonl").read_text().splitlines()) > 128, proc)
    proc.kill()
    proc.wait()
    assert Run(run).status() == "crashed"

    resumed = _workbench("train", "--resume", str(run))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    _assert_same_as(run, uninterrupted)
    events = Run(run).events()
    resume = next(e for e in events if e["event"] == "resume")
    assert resume["from_step"] == 4 and resume["found"] == "crashed" and resume["dropped"]["rollouts.jsonl"] > 0
    assert [e["status"] for e in events if e["event"] == "end"] == ["finished"]
    # What the resume took out is kept, not deleted.
    assert len((run / "superseded" / "rollouts.jsonl").read_text().splitlines()) == resume["dropped"]["rollouts.jsonl"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_checkpoints_says_how_to_resume_and_resumes_exactly(uninterrupted, tmp_path, sig):
    run = tmp_path / "stopped"
    proc = _workbench("train", *ARGS, "--runs_root", str(tmp_path), "--run_name", "stopped")
    _wait_for("step 3", lambda: len((run / "metrics.jsonl").read_text().splitlines()) >= 3
              if (run / "metrics.jsonl").exists() else False, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    line = next(x for x in out.splitlines() if x.startswith("interrupted at step"))
    assert f"resume with: workbench train --resume {run}" in line
    step = int(line.split()[3])
    events = Run(run).events()
    assert events[-1]["event"] == "end" and events[-1]["status"] == "interrupted"
    assert (run / "trainer" / f"checkpoint-{step}").is_dir() and (run / "adapter").is_dir()
    assert Run(run).status() == "interrupted"

    resumed = _workbench("train", "--resume", str(run))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    _assert_same_as(run, uninterrupted)
    assert Run(run).status() == "finished"


def test_resume_refuses_what_it_cannot_continue(uninterrupted, tmp_path, capsys):
    from workbench.cli import main

    assert main(["train", "--resume", str(uninterrupted)]) == 2
    assert "finished; there is nothing to resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((uninterrupted / "config.yaml").read_text())
    dead = {"event": "start", "pid": 2 ** 22 + 7, "host": os.uname().nodename}  # a process that is gone
    (bare / "events.jsonl").write_text(json.dumps(dead) + "\n")
    before = sorted(p.name for p in bare.iterdir())
    assert main(["train", "--resume", str(bare)]) == 2
    assert "has no checkpoint to resume from" in capsys.readouterr().err
    assert sorted(p.name for p in bare.iterdir()) == before  # nothing touched


def test_an_sft_stage_resumes_exactly_too(tmp_path):
    args = ["sft", "--model", "tiny-random", "--data", "coldstart:chain_sum", "--max_steps", "6", "--save_steps", "2",
            "--per_device_train_batch_size", "4", "--eval_items", "2", "--runs_root", str(tmp_path)]
    full = _workbench(*args, "--run_name", "full")
    assert full.wait(timeout=300) == 0, full.communicate()
    proc = _workbench(*args, "--run_name", "killed")
    run = tmp_path / "killed"
    _wait_for("checkpoint 4", (run / "trainer" / "checkpoint-4" / "trainer_state.json").is_file, proc)
    proc.kill()
    proc.wait()
    resumed = _workbench("sft", "--resume", str(run))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    keys = ("step", "loss", "grad_norm", "learning_rate")
    assert _records(run, "metrics.jsonl", keys) == _records(tmp_path / "full", "metrics.jsonl", keys)
    assert [r["step"] for r in _records(run, "metrics.jsonl", ["step"])] == [1, 2, 3, 4, 5, 6]


def test_resume_with_a_different_loss_split_continues_the_same_data(uninterrupted, tmp_path):
    """A resumed run recomputes its loss micro-batches from the memory it has then (workbench.grpo.memory).
    Stopped while split in 2 (a budget that fits 16 of the 32 rows), resumed in 1: HF's data skip counts
    micro-batches, and rows / k per micro-batch times k of them is the same prompts, so every step
    trains the prompts the uninterrupted run trained. (Completions may differ from step 2 on: two
    micro-batches sum the gradient in another order.)"""
    from workbench.models import TINY_MODEL, load_model, resolve_precision
    from workbench.grpo.memory import activation_bytes

    config = load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))[0].config
    # 24 rows of ~80 tokens (a ~55-token prompt + 24 new): 16 rows fit and 32 do not for anything from 60 to 120 tokens
    budget_mb = activation_bytes(config, 24, 80) / 2 ** 20
    run = tmp_path / "split"
    proc = _workbench("train", *ARGS, "--runs_root", str(tmp_path), "--run_name", "split",
                      env={"WORKBENCH_MEMORY_BUDGET_MB": str(budget_mb)})
    _wait_for("step 3", lambda: len((run / "metrics.jsonl").read_text().splitlines()) >= 3
              if (run / "metrics.jsonl").exists() else False, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "the loss runs in 2 micro-batches of 16 rows" in err
    assert [e["micro_batches"] for e in Run(run).events() if e["event"] == "loss_micro_batches"] == [2]

    resumed = _workbench("train", "--resume", str(run))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "micro-batches" not in err  # the whole batch fits the memory it has now
    prompts = ("step", "prompt_id")
    assert sorted(map(tuple, (r.values() for r in _records(run, "rollouts.jsonl", prompts)))) == \
        sorted(map(tuple, (r.values() for r in _records(uninterrupted, "rollouts.jsonl", prompts))))
    assert [r["step"] for r in _records(run, "metrics.jsonl", ["step"])] == [1, 2, 3, 4, 5, 6]
