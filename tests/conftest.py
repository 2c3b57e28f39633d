"""Suite-wide settings."""

import os

# precision "auto" on CPU follows a matmul probe (workbench.models.cpu_bf16_is_fast); the suite pins
# fp32 so its results do not depend on the machine. Set at import, before any fixture (module-scoped
# ones too) or subprocess runs; tests of the probe change it with monkeypatch, which restores it.
os.environ["WORKBENCH_CPU_BF16"] = "0"
