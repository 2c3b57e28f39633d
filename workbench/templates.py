"""Prompt templates: how a task question becomes the text the model continues.

- "r1_zero": the DeepSeek-R1-Zero template, verbatim from the paper, as plain text. For base
  models, which have no chat template (R1-Zero trained DeepSeek-V3-Base with exactly this).
- "chat_think": the tokenizer's chat template with a system prompt asking for reasoning inside
  <think></think> and the final answer inside <answer></answer>. For instruct models.
- "chat_concise": the chat template with a one-line system prompt asking for a numeric final
  answer at the end; no tags (answers are read by the last-number fallback). Measured to let a
  135M instruct model learn.
- "auto": chat_think if the tokenizer has a chat template, else r1_zero.

Neither r1_zero nor chat_think ends the prompt with "<think>": the model has to open the tag
itself, which the strict format reward checks.

A template also says where the assistant's turn ends (``stop_strings``). A chat template ends it
with the tokenizer's end-of-turn token; r1_zero is plain text, so a base model that never learned
an end-of-turn token writes the next "User:" turn itself until the token budget runs out. Its turn
ends at "</answer>" (the template's answer is the last thing the assistant says) or "User:".

    from workbench.templates import render_prompt
    text = render_prompt("auto", "What is 2 + 3?", tokenizer)
"""

from __future__ import annotations
from workbench.errors import WorkbenchError

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: {prompt}. Assistant:"
)

THINK_SYSTEM_PROMPT = (
    "You are a helpful assistant. First think through the problem step by step inside <think> </think> "
    "tags, then give only the final answer inside <answer> </answer> tags, i.e., "
    "<think> reasoning process here </think> <answer> answer here </answer>."
)

CONCISE_SYSTEM_PROMPT = "Solve the problem. End your reply with the final answer as a number."

TEMPLATES: dict[str, str] = {
    "auto": "chat_think if the tokenizer has a chat template, else r1_zero",
    "r1_zero": "DeepSeek-R1-Zero plain-text template with <think>/<answer> tags (base models)",
    "chat_think": "chat template, system prompt asks for <think>...</think><answer>...</answer>",
    "chat_concise": "chat template, system prompt asks for a final numeric answer at the end",
    "plain": "the question and a newline, nothing else (models pretrained from scratch on an aha-lab world)",
}

_SYSTEM_PROMPTS: dict[str, str | None] = {
    "r1_zero": None,
    "chat_think": THINK_SYSTEM_PROMPT,
    "chat_concise": CONCISE_SYSTEM_PROMPT,
    "plain": None,
}


# Where a plain-text template's assistant turn ends (chat templates end it with their own token).
END_OF_TURN: dict[str, tuple[str, ...]] = {
    "r1_zero": ("</answer>", "User:"),
}
STOP_CHOICES = ("auto", "none")
# Templates that render plain text (no chat template): what a base model is shown.
PLAIN_TEXT_TEMPLATES = ("r1_zero", "plain")


class UnknownTemplateError(WorkbenchError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"unknown template {name!r}; valid choices: {', '.join(TEMPLATES)}")


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def resolve_template(name: str, tokenizer) -> str:
    """The concrete template `name` stands for with this tokenizer ("auto" is resolved)."""
    if name not in TEMPLATES:
        raise UnknownTemplateError(name)
    if name == "auto":
        # A model directory may name its own template (a lab model's tokenizer_config.json does).
        own = (getattr(tokenizer, "init_kwargs", None) or {}).get("workbench_template")
        if own in TEMPLATES and own != "auto":
            return own
        return "chat_think" if has_chat_template(tokenizer) else "r1_zero"
    return name


def system_prompt(template: str, tokenizer=None) -> str | None:
    """The system prompt `template` uses (None for r1_zero); "auto" resolves against `tokenizer`."""
    return _SYSTEM_PROMPTS[resolve_template(template, tokenizer)]


def stop_strings(template: str, tokenizer, stop="auto") -> tuple[str, ...]:
    """The strings that end a generation with ``template``, besides the tokenizer's EOS token.

    ``stop``: "auto" (the template's end of turn, ``END_OF_TURN``: "</answer>" and "User:" for
    r1_zero, none for the others), "none", or the strings themselves (a list, or one string with
    "|" between them). A completion that writes one ends with the token that completes it, the
    string included (as vLLM's ``include_stop_str_in_output``); generation passes them to
    transformers' ``StopStringCriteria`` (``generate(stop_strings=..., tokenizer=...)``), which
    also ends a row whose last token runs past the string ("User:\n") and matches against the
    prompt too (a prompt ending in part of a stop string can end a row early).
    Raises UnknownTemplateError for an unknown template."""
    if isinstance(stop, str):
        if stop == "auto":
            return END_OF_TURN.get(resolve_template(template, tokenizer), ())
        if stop == "none":
            return ()
        stop = stop.split("|")
    return tuple(s for s in stop if s)


def render_prompt(template: str, question: str, tokenizer) -> str:
    """The full prompt text the model sees for `question` (generation prompt included)."""
    concrete = resolve_template(template, tokenizer)
    if concrete == "r1_zero":
        return R1_ZERO_TEMPLATE.format(prompt=question)
    if concrete == "plain":
        return f"{question}\n"
    if not has_chat_template(tokenizer):
        raise WorkbenchError(
            f"template {concrete!r} needs a tokenizer with a chat template; use 'r1_zero' (or 'auto') for base models"
        )
    system = _SYSTEM_PROMPTS[concrete]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:
        # Some chat templates (Gemma's, for one) reject a system role; fold it into the user turn.
        merged = [{"role": "user", "content": f"{system}\n\n{question}"}]
        return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
