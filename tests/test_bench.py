"""workbench bench's floor: the matmul rate is the best of trials spread through the run, the floor
is the least work the step needs, and a path faster than its floor is reported as a fault."""

import json

import pytest

from workbench.cli import main
from workbench.grpo import bench


def test_rate_is_the_best_trial_and_a_path_under_its_floor_is_a_fault():
    rate = bench.MatmulRate("cpu", None)
    rate.trials = [102e9, 300e9, 290e9]  # the first trial ran while something else held the cores
    assert rate.best == 300e9
    result = {"floor_flops": 600e9, "floor_shared_prefix_flops": 300e9,
              "workbench": {"median_s": 2.0}, "vanilla": {"median_s": 6.0}, "trl_tuned": {"median_s": 4.0}}
    out = bench.add_floors(dict(result), rate.best)
    assert out["floor_s"] == 1.0 and out["floor_every_row_s"] == 2.0  # the floor: each prompt once
    assert out["workbench_over_floor"] == 2.0 and out["vanilla_over_floor"] == 6.0 and not out["measurement_fault"]
    assert out["trl_tuned_over_floor"] == 4.0
    low = bench.add_floors(dict(result), 102e9)  # the low trial alone: the floor (2.9 s) is above the step (2.0 s)
    assert low["workbench_over_floor"] < 1 and low["measurement_fault"]


def test_roofline_floor_counts_the_weight_read_of_every_decoded_token():
    # 1 TFLOP/s, 10 GB/s; decoding 100 tokens of a 1 GB model reads 100 GB: 10 s, against 0.5 s of decode matmuls
    result = {"floor_flops": 4e12, "floor_shared_prefix_flops": 2e12, "decode_flops": 0.5e12, "decode_steps": 100,
              "weight_bytes": 1e9, "workbench": {"median_s": 23.0}}
    out = bench.add_floors(dict(result), 1e12, 10e9)
    assert out["floor_s"] == 2.0 and out["weight_read_s"] == 10.0
    assert out["floor_roofline_s"] == 2.0 - 0.5 + 10.0 and out["workbench_over_roofline"] == 2.0
    fast_memory = bench.add_floors(dict(result), 1e12, 1e15)  # where the matmuls dominate, the floors agree
    assert fast_memory["floor_roofline_s"] == fast_memory["floor_s"]
    assert "floor_roofline_s" not in bench.add_floors(dict(result), 1e12)  # no read rate, no roofline


def test_bench_end_to_end_on_the_tiny_model(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "tiny-random", "--settings", "demo", "--steps", "1", "--warmup", "0",
                 "--output", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert len(saved["matmul_trials"]) == 2 and saved["bench.matmul_flops_per_s"] == max(saved["matmul_trials"])
    (setting,) = saved["settings"]
    assert setting["floor_s"] <= setting["floor_every_row_s"]
    assert len(saved["read_trials"]) == 2 and saved["bench.read_bytes_per_s"] == max(saved["read_trials"])
    assert setting["floor_s"] <= setting["floor_roofline_s"] and setting["decode_steps"] <= 24
    assert setting["weight_bytes"] > 0 and setting["workbench_over_roofline"] <= setting["workbench_over_floor"]
    assert setting["workbench_over_floor"] == setting["workbench"]["median_s"] / setting["floor_s"]
    assert setting["speedup_vs_tuned"] == setting["trl_tuned"]["median_s"] / setting["workbench"]["median_s"]
    printed = capsys.readouterr().out
    assert "best of 2 trials" in printed and "over TRL tuned" in printed and "roofline floor" in printed


def test_reasoning_setting_forces_every_rollout_to_full_length(tmp_path, monkeypatch):
    monkeypatch.setitem(bench.SETTINGS, "reasoning", (1, 2, 12))  # the real one is 4 x 8 x 256: same rule, smaller
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "tiny-random", "--settings", "reasoning", "--steps", "1", "--warmup", "0",
                 "--output", str(out)]) == 0
    (setting,) = json.loads(out.read_text())["settings"]
    assert setting["fixed_length"] is True  # the discriminating check: random weights rarely stop anyway
    for path in bench.PATHS:
        assert [n for step in setting[path]["steps"] for n in step["completion_tokens"]] == [12, 12]


def test_a_setting_that_dies_keeps_the_ones_before_it(tmp_path, monkeypatch):
    real = bench.run_setting

    def dies_on_wide(name, *args, **kwargs):
        if name == "wide":
            raise MemoryError("stands in for the OOM killer")
        return real(name, *args, **kwargs)

    monkeypatch.setitem(bench.SETTINGS, "demo", (1, 2, 4))
    monkeypatch.setattr(bench, "run_setting", dies_on_wide)
    out = tmp_path / "bench.json"
    with pytest.raises(MemoryError):
        main(["bench", "--model", "tiny-random", "--settings", "demo,wide", "--steps", "1", "--warmup", "0",
              "--output", str(out)])
    (setting,) = json.loads(out.read_text())["settings"]
    assert setting["name"] == "demo" and setting["floor_s"] > 0


def test_paths_choose_which_trainers_run(tmp_path, capsys):
    out = tmp_path / "bench.json"
    settings = ["--settings", "demo", "--steps", "1", "--warmup", "0", "--output", str(out)]
    assert main(["bench", "--model", "tiny-random", "--paths", "vanilla", *settings]) == 0
    (setting,) = json.loads(out.read_text())["settings"]
    assert "trl_tuned" not in setting and "speedup_vs_tuned" not in setting
    assert setting["vanilla"]["steps"] and setting["workbench"]["steps"] and setting["speedup"] > 0
    with pytest.raises(SystemExit):  # argparse's one-line usage error
        main(["bench", "--paths", "vllm"])
    assert "unknown path(s) ['vllm']; valid choices: vanilla, trl_tuned, workbench" in capsys.readouterr().err
