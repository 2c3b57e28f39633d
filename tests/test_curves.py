"""R1-Zero's curves of a run (workbench.analysis.curves, `workbench curves`) on a real tiny GRPO run."""

import pytest

from workbench import WorkbenchConfig, train
from workbench.analysis.curves import format_heldout, format_training, heldout_curves, training_curves
from workbench.cli import main
from workbench.runlog import Run


class EvenTokenShare:
    """A reward with spread on random text, so the tiny model's LoRA moves and answers change."""

    __name__ = "even_tokens"

    def __call__(self, completions, completion_ids, **kwargs):
        return [sum(t % 2 == 0 for t in ids) / max(len(ids), 1) for ids in completion_ids]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cfg = WorkbenchConfig(model="tiny-random", task="chain_sum", max_steps=2, num_generations=4,
                          per_device_train_batch_size=8, max_completion_length=8, eval_items=6, eval_batch_size=6,
                          eval_every=1, eval_samples=3, learning_rate=5e-2, save_adapter=False,
                          runs_root=str(tmp_path_factory.mktemp("runs")), run_name="curves")
    return train(cfg, progress=False, reward_funcs=[EvenTokenShare()]).run_dir


def test_heldout_curves_pair_each_step_with_step_0_on_the_same_questions(run_dir):
    curves = heldout_curves(run_dir)
    assert [c["step"] for c in curves] == [0, 1, 2]
    evals = {e["step"]: e for e in Run(run_dir).events() if e["event"] == "eval" and "step" in e}
    # Recomputed from the events by hand: mean response length per question, then the paired change.
    def lengths(e):
        return {q["id"]: sum(s["tokens"] for s in q["samples"]) / len(q["samples"]) for q in e["sampled"]["items"]}
    first, last = lengths(evals[0]), lengths(evals[2])
    diffs = [last[q] - first[q] for q in first]
    assert curves[-1]["tokens_delta"] == pytest.approx(sum(diffs) / len(diffs))
    assert curves[0]["tokens_delta"] == 0 and curves[0]["greedy_delta"] == 0
    assert curves[-1]["greedy"] == pytest.approx(evals[2]["accuracy"])
    assert curves[-1]["pass@1"] == pytest.approx(evals[2]["sampled"]["pass@1"])
    assert "faithful" not in curves[0]  # only a task that can verify its checks (the aha lab's worlds) has it
    table = format_heldout(curves)
    assert table.splitlines()[0].split()[:3] == ["step", "pass@1", "greedy"] and "Δ" in table


def test_training_curves_join_metrics_with_the_rollouts_trained_on(run_dir):
    rows = training_curves(run_dir)
    assert [r["step"] for r in rows] == [1, 2]
    rollouts = Run(run_dir).rollouts()
    for r in rows:
        mine = [x for x in rollouts if x["step"] == r["step"]]
        assert r["n"] == len(mine) == 8
        assert r["completion_length_mean"] == pytest.approx(sum(x["tokens"] for x in mine) / len(mine))
    assert "format" not in format_training(rows).splitlines()[0]  # no format reward in this run: no column


def test_workbench_curves_prints_both_tables_and_refuses_a_non_run(run_dir, tmp_path, capsys):
    assert main(["curves", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "held out:" in out and "training:" in out
    assert main(["curves", str(tmp_path)]) != 0
    assert "not a run directory" in capsys.readouterr().err
