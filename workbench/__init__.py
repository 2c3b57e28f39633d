"""R1 Workbench: DeepSeek-R1-style GRPO on small language models.

    from workbench import WorkbenchConfig, train
    result = train(WorkbenchConfig(task="chain_sum", max_steps=20))

Heavy dependencies (torch, transformers, TRL) load on first use, not on ``import workbench``.
"""

from workbench.config import WorkbenchConfig

__version__ = "0.1.0"
__all__ = ["WorkbenchConfig", "train"]


# A function, not a re-export of workbench.grpo.trainer.train: importing it here would import the
# trainer's dependencies on ``import workbench``.
def train(cfg: WorkbenchConfig | None = None, **overrides):
    """One GRPO run end to end (``workbench.grpo.trainer.train``); returns a ``TrainResult``."""
    from workbench.grpo.trainer import train as _train

    return _train(cfg, **overrides)
