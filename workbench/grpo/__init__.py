"""The RL core: GRPO on TRL's GRPOTrainer.

- ``trainer``: the trainer subclass that logs every rollout, and ``train(cfg)``, one GRPO run;
- ``fast``: the faster step (shared prompt prefix, merged-LoRA generation, inverse-CDF sampling),
  the same mathematics as TRL's, checked by tests/test_fast.py;
- ``bench``: TRL as it comes against the workbench's step, with the compute floor.
"""
