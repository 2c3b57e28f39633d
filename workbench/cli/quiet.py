"""A clean terminal: the CLI hides known third-party messages that say nothing about the run.

Each filter is narrow (one message, one category, one logger or module) and names its upstream
cause, so a new or different warning still shows. ``workbench --verbose <verb>`` installs none.
Installed once, at the entry point (``workbench.cli.main``), before torch, transformers, peft or
bitsandbytes are imported.
"""

from __future__ import annotations

import logging
import warnings

# (category, message regex, module regex or "") passed to warnings.filterwarnings.
WARNINGS = (
    # transformers 5.24 renamed gradient checkpointing to "activation checkpointing". TRL 1.16's
    # GRPOTrainer and peft 0.21 still read the old names (the workbench uses the new ones where they exist).
    (FutureWarning, r"`(gradient_checkpointing\w*|is_gradient_checkpointing)` is deprecated and will be removed in v6", ""),
    # transformers 5.24 renamed `past_key_values` to `cache`; its own generate() loop and peft's
    # PeftModelForCausalLM.generate still pass the old name (so does workbench.grpo.fast, which must
    # also run on transformers < 5.24, where `cache` does not exist).
    (FutureWarning, r"`past_key_values` is deprecated and will be removed in version", ""),
    # gradio 6's queue sets pandas options that pandas 3 deprecated (Pandas4Warning, a DeprecationWarning).
    (Warning, r"(The copy keyword is deprecated|'future\.no_silent_downcasting' is deprecated)", r"gradio\."),
)


class _DropMessage(logging.Filter):
    """Drop a logger's records whose message starts with ``prefix``."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


# (logger name, message prefix): log records, not warnings.
LOG_RECORDS = (
    # bitsandbytes 0.50 on a CPU with avx512_bf16 tries, at import, to fetch a 4-bit CPU kernel
    # through the optional `kernels` package, and logs when it is missing. peft imports bitsandbytes
    # whenever it is installed, so every run printed it, 4-bit or not. A 4-bit CPU run says so itself
    # (workbench.models.load_model).
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
    # The same rename as above, logged once per process by transformers' output classes.
    ("transformers.utils.generic", "`past_key_values`/`cache_params` are deprecated"),
)

_installed = False


def install() -> None:
    """Install the filters above (idempotent)."""
    global _installed
    if _installed:
        return
    for category, message, module in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name, prefix in LOG_RECORDS:
        logging.getLogger(name).addFilter(_DropMessage(prefix))
    _installed = True


def pop_verbose(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--verbose`` (anywhere in it), and whether it was there."""
    rest = [a for a in argv if a != "--verbose"]
    return rest, len(rest) != len(argv)

