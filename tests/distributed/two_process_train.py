"""Run by tests/test_distributed.py under ``torchrun --nproc_per_node 2`` (gloo on the CPU): the tiny
model trains for 2 GRPO steps through ``workbench.train``, exactly as one process would, and each
process writes its trained LoRA weights to OUT/lora-rank<r>.pt for the test to compare.

Usage: torchrun --nproc_per_node 2 tests/distributed/two_process_train.py RUNS_ROOT OUT
"""

import os
import sys

import torch

from workbench import lifecycle
from workbench.config import WorkbenchConfig
from workbench.grpo.trainer import train


def vowel_share(completions, **kwargs):
    """A reward that differs from rollout to rollout even for a random model (whose accuracy is 0):
    the share of the completion's characters that are vowels. The test re-scores the logged text."""
    return [sum(c in "aeiou" for c in text) / max(len(text), 1) for text in completions]


def main(runs_root: str, out: str) -> None:
    finish = lifecycle.Stage.finish

    def finish_and_keep_weights(self, trainer, *args, **kwargs):
        # Observe, not replace: each process's trained LoRA tensors, before the main one saves.
        lora = {k: v.detach().cpu().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}
        torch.save(lora, os.path.join(out, f"lora-rank{os.environ.get('RANK', '0')}.pt"))
        return finish(self, trainer, *args, **kwargs)

    lifecycle.Stage.finish = finish_and_keep_weights
    cfg = WorkbenchConfig(model="tiny-random", task="chain_sum", max_steps=2, num_generations=4,
                          per_device_train_batch_size=4, max_completion_length=12, eval_items=4,
                          eval_batch_size=4, eval_samples=1, learning_rate=1e-2, runs_root=runs_root,
                          rewards={"accuracy": 1.0}, seed=3)
    train(cfg, progress=False, reward_funcs=[vowel_share])


if __name__ == "__main__":
    main(*sys.argv[1:3])
