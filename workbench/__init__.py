"""R1 Workbench: DeepSeek-R1-style GRPO on small language models.

    from workbench import WorkbenchConfig, train
    result = train(WorkbenchConfig(task="chain_sum", max_steps=20))

Heavy dependencies (torch, transformers, TRL) load on first use, not on ``import workbench``.
"""

from workbench.config import WorkbenchConfig

__version__ = "0.1.0"
__all__ = ["WorkbenchConfig", "train"]


# The module is workbench.training, not workbench.train: a submodule named "train" would replace
# this function as the package attribute the moment it is imported.
def train(cfg: WorkbenchConfig | None = None, **overrides):
    from workbench.training import train as _train

    return _train(cfg, **overrides)
