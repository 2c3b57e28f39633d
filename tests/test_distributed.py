"""Two processes on the CPU (torchrun, gloo), as ``accelerate launch`` runs a job on N GPUs: the run
directory must say exactly what a one-process run would, for every process's rollouts.

The job (tests/distributed/two_process_train.py) trains the tiny model for 2 GRPO steps through
``workbench.train``; nothing here is mocked. About 20 s on 2 cores.
"""

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from workbench.distributed import agree, gather_records, world_size
from workbench.rewards.extract import extract_answer
from workbench.runlog import Run
from workbench.tasks import get_task

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "distributed" / "two_process_train.py"
STEPS, PROCESSES, PER_DEVICE, G = 2, 2, 4, 4


def launch(runs: Path, out: Path, processes: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on 2 cores: one thread each
    env.pop("WORLD_SIZE", None)
    if processes == 1:
        cmd = [sys.executable, str(SCRIPT), str(runs), str(out)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--standalone", str(SCRIPT), str(runs), str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    (root / "out").mkdir()
    launch(root / "runs", root / "out", PROCESSES)
    (run_dir,) = list((root / "runs").iterdir())
    return Run(run_dir), root / "out"


def vowel_share(text: str) -> float:  # the job's own reward, re-scored here
    return sum(c in "aeiou" for c in text) / max(len(text), 1)


def test_every_rollout_of_every_process_is_logged_once_with_its_own_rewards(two_process_run):
    run, _ = two_process_run
    rollouts = run.rollouts()
    assert len(rollouts) == STEPS * PROCESSES * PER_DEVICE  # steps x global batch
    task = get_task("chain_sum", seed=3)
    items = {it["id"]: it for it in task.items("train", 64)}
    for r in rollouts:
        assert r["rewards"]["vowel_share"] == pytest.approx(vowel_share(r["completion"]), abs=1e-6)
        assert r["rewards"]["accuracy"] == task.score(extract_answer(r["completion"], task.answer_kind),
                                                      items[r["prompt_id"]])
        assert r["reward"] == pytest.approx(r["rewards"]["accuracy"] + r["rewards"]["vowel_share"], abs=1e-6)
    assert len({r["rewards"]["vowel_share"] for r in rollouts}) > 4  # the rewards differ, so a misaligned row shows


def test_groups_span_the_global_batch_and_their_advantages_average_zero(two_process_run):
    run, _ = two_process_run
    groups = defaultdict(list)
    for r in run.rollouts():
        groups[r["step"], r["group"]].append(r)
    assert sorted(groups) == [(s, g) for s in range(1, STEPS + 1) for g in range(PROCESSES * PER_DEVICE // G)]
    for rows in groups.values():
        assert sorted(r["index"] for r in rows) == list(range(G))
        assert len({r["prompt_id"] for r in rows}) == 1
        assert abs(sum(r["advantage"] for r in rows)) < 1e-4
        assert any(abs(r["advantage"]) > 1e-3 for r in rows)  # a real signal, normalised within the group
        # Group-normalised (scale_rewards "group"): advantage = (reward - group mean) / (group std + 1e-4).
        rewards = torch.tensor([r["reward"] for r in sorted(rows, key=lambda r: r["index"])])
        expected = (rewards - rewards.mean()) / (rewards.std() + 1e-4)
        got = torch.tensor([r["advantage"] for r in sorted(rows, key=lambda r: r["index"])])
        assert torch.allclose(got, expected, atol=1e-4)


def test_lora_weights_are_identical_across_processes_and_trained(two_process_run):
    _, out = two_process_run
    ranks = [torch.load(out / f"lora-rank{r}.pt") for r in range(PROCESSES)]
    assert ranks[0].keys() == ranks[1].keys() and ranks[0]
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    assert any(v.abs().sum() > 0 for k, v in ranks[0].items() if "lora_B" in k)  # B starts at zero: it moved


def test_one_run_directory_written_once(two_process_run):
    run, _ = two_process_run
    kinds = [e["event"] for e in run.events()]
    assert kinds.count("start") == kinds.count("end") == kinds.count("setup") == 1
    assert [e["phase"] for e in run.events() if e["event"] == "eval"] == ["before", "after"]
    assert [m["step"] for m in run.metrics()] == list(range(1, STEPS + 1))
    start = next(e for e in run.events() if e["event"] == "start")
    assert start["devices"]["processes"] == PROCESSES and start["devices"]["unit"] == "core"
    end = run.events()[-1]
    assert end["status"] == "finished" and end["cost"]["device_hours"] > 0
    assert end["cost"]["generated_tokens"] == sum(r["tokens"] for r in run.rollouts())
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    assert run.status() == "finished"


def test_held_out_evaluation_matches_one_process(two_process_run, tmp_path):
    """The 'before' evaluation (the untrained policy, same seed) is the same with one process as with two."""
    run, _ = two_process_run
    (tmp_path / "out").mkdir()
    launch(tmp_path / "runs", tmp_path / "out", 1)
    (single,) = [Run(p) for p in (tmp_path / "runs").iterdir()]
    two, one = run.evals()["before"], single.evals()["before"]
    assert [i["completion"] for i in two["items"]] == [i["completion"] for i in one["items"]]
    assert two["accuracy"] == one["accuracy"] and two["sampled"] == one["sampled"]


def test_one_process_needs_no_launcher():
    # Without a launcher the collective steps are local: nothing is initialised.
    assert world_size() == 1 and agree(lambda: "name") == "name" and gather_records([1, 2]) == [1, 2]
