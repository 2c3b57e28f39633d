"""Tests for workbench.templates: the verbatim R1-Zero text, auto-resolution and chat rendering
with a real (tiny, in-memory) Hugging Face tokenizer."""

import pytest

from workbench.templates import (
    CONCISE_SYSTEM_PROMPT,
    R1_ZERO_TEMPLATE,
    TEMPLATES,
    UnknownTemplateError,
    render_prompt,
    resolve_template,
    stop_strings,
    system_prompt,
)

# DeepSeek-R1 paper (arXiv 2501.12948, Table 1), word for word, with "prompt" in its place.
PAPER_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: prompt. "
    "Assistant:"
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
NO_SYSTEM_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _tokenizer(chat_template=None):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    tok.chat_template = chat_template
    return tok


@pytest.fixture(scope="module")
def chat_tok():
    return _tokenizer(CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def base_tok():
    return _tokenizer(None)


def test_r1_zero_template_is_verbatim():
    assert R1_ZERO_TEMPLATE.replace("{prompt}", "prompt") == PAPER_TEMPLATE
    assert R1_ZERO_TEMPLATE.count("{prompt}") == 1
    assert not R1_ZERO_TEMPLATE.rstrip().endswith("<think>")


def test_r1_zero_render_keeps_braces_in_questions(base_tok):
    text = render_prompt("r1_zero", "Is {x} a set?", base_tok)
    assert text.endswith("User: Is {x} a set?. Assistant:")
    assert text.startswith("A conversation between User and Assistant.")


def test_auto_picks_chat_or_r1_zero(chat_tok, base_tok):
    assert resolve_template("auto", chat_tok) == "chat_think"
    assert resolve_template("auto", base_tok) == "r1_zero"
    assert resolve_template("auto", None) == "r1_zero"
    assert resolve_template("chat_concise", base_tok) == "chat_concise"  # explicit names are kept
    assert render_prompt("auto", "2+2?", base_tok) == render_prompt("r1_zero", "2+2?", base_tok)


def test_chat_think_renders_with_system_prompt(chat_tok):
    text = render_prompt("chat_think", "What is 2 + 3?", chat_tok)
    sys_prompt = system_prompt("chat_think")
    assert "<think>" in sys_prompt and "<answer>" in sys_prompt
    assert text == f"<|system|>{sys_prompt}\n<|user|>What is 2 + 3?\n<|assistant|>"
    assert render_prompt("auto", "What is 2 + 3?", chat_tok) == text


def test_chat_concise_system_prompt(chat_tok):
    assert CONCISE_SYSTEM_PROMPT == "Solve the problem. End your reply with the final answer as a number."
    assert system_prompt("chat_concise") == CONCISE_SYSTEM_PROMPT
    assert render_prompt("chat_concise", "Q", chat_tok).startswith(f"<|system|>{CONCISE_SYSTEM_PROMPT}\n<|user|>Q")
    assert system_prompt("r1_zero") is None
    assert system_prompt("auto", chat_tok) == system_prompt("chat_think")


def test_chat_template_without_system_role_gets_it_folded_in():
    tok = _tokenizer(NO_SYSTEM_CHAT_TEMPLATE)
    text = render_prompt("chat_concise", "Q", tok)
    assert text == f"<|user|>{CONCISE_SYSTEM_PROMPT}\n\nQ\n<|assistant|>"


def test_chat_template_needs_a_chat_tokenizer(base_tok):
    with pytest.raises(ValueError, match="chat template"):
        render_prompt("chat_think", "Q", base_tok)


def test_unknown_template_lists_choices(chat_tok):
    with pytest.raises(UnknownTemplateError) as e:
        resolve_template("r1-zero", chat_tok)
    assert "r1-zero" in str(e.value)
    for name in TEMPLATES:
        assert name in str(e.value)
    with pytest.raises(ValueError):
        render_prompt("nope", "Q", chat_tok)
    assert set(TEMPLATES) == {"auto", "r1_zero", "chat_think", "chat_concise", "plain"}


def test_stop_strings_end_r1_zeros_turn_and_leave_chat_templates_alone(chat_tok, base_tok):
    assert stop_strings("auto", base_tok) == ("</answer>", "User:")  # auto -> r1_zero for a base model
    assert stop_strings("auto", chat_tok) == ()  # the chat template's own end-of-turn token ends it
    assert stop_strings("r1_zero", chat_tok, "none") == ()
    assert stop_strings("chat_think", chat_tok, "</answer>|\n\n") == ("</answer>", "\n\n")
    assert stop_strings("chat_think", chat_tok, ["Q:", ""]) == ("Q:",)
    # The template's turn really ends where the next "User:" would begin.
    assert R1_ZERO_TEMPLATE.count("User:") == 1 and "User:" in stop_strings("r1_zero", base_tok)
    with pytest.raises(UnknownTemplateError):
        stop_strings("nope", base_tok)
