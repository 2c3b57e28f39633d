"""The language-consistency reward: share of target-script words in the chain of thought."""

import pickle

import pytest

from workbench.errors import WorkbenchError
from workbench.rewards.language import LANGUAGES, LanguageConsistencyReward, language_consistency, words_by_script


def test_pure_english_scores_one():
    text = "<think>I add the two numbers and get seven, then check it.</think><answer>7</answer>"
    assert language_consistency(text) == 1.0


def test_half_chinese_scores_a_half():
    # Four English words, four Han characters (one word each).
    text = "<think>First add both numbers 然后相加</think><answer>7</answer>"
    assert language_consistency(text) == pytest.approx(0.5)
    assert language_consistency(text, "zh") == pytest.approx(0.5)


def test_only_the_think_block_counts():
    text = "<think>We add three and four.</think><answer>答案是七</answer>"
    assert language_consistency(text) == 1.0
    # No think tag at all: the whole completion is the chain of thought.
    assert language_consistency("We add them 答案") == pytest.approx(3 / 5)


def test_numbers_symbols_and_math_tokens_are_ignored():
    assert language_consistency("<think>3 + 4 = 7 so 7</think><answer>7</answer>") == 1.0
    words = [w for w, _ in words_by_script("Let x = 2x + 3, so x^2 and \\frac{a}{b} is 12km, (the) end.")]
    assert words == ["Let", "so", "and", "is", "the", "end"]
    # Variables do not count against a Chinese chain of thought either.
    assert language_consistency("<think>设 x 为 3，则 2x = 6</think><answer>6</answer>", "zh") == 1.0


def test_no_countable_words_scores_one():
    assert language_consistency("<think>4 - 7 = -3</think><answer>-3</answer>") == 1.0
    assert language_consistency("<think></think><answer>-3</answer>") == 1.0
    assert language_consistency("") == 1.0


def test_scripts_and_languages():
    assert language_consistency("Привет мир hello there", "ru") == pytest.approx(0.5)
    assert language_consistency("नमस्ते दुनिया", "hi") == 1.0  # vowel signs do not split words
    assert language_consistency("これは テスト です", "ja") == 1.0  # kana, one word per character
    assert language_consistency("用Python计算", "zh") == pytest.approx(3 / 4)  # 用 计 算 + Python
    # An unlisted script still counts as foreign.
    assert language_consistency("hello สวัสดี", "en") < 1.0
    # The documented limit: a same-script language is not told apart.
    assert language_consistency("Nous ajoutons les deux nombres", "en") == 1.0


def test_unknown_target_lists_the_valid_ones():
    with pytest.raises(WorkbenchError, match="unknown target language 'english'.*en.*zh"):
        language_consistency("hello", "english")
    with pytest.raises(WorkbenchError, match="valid choices"):
        LanguageConsistencyReward("xx")
    assert {"en", "zh", "ja", "ru"} <= set(LANGUAGES)


def test_trl_contract_on_text_and_chat_completions():
    reward = LanguageConsistencyReward("en")
    assert reward.__name__ == "language"
    texts = ["<think>add them up</think><answer>7</answer>", "<think>相加 two numbers</think><answer>7</answer>"]
    chats = [[{"role": "assistant", "content": t}] for t in texts]
    expected = [1.0, 0.5]
    assert reward(texts, answer=["7", "7"], prompts=["q", "q"]) == pytest.approx(expected)
    assert reward(chats) == pytest.approx(expected)
    assert pickle.loads(pickle.dumps(reward))(texts) == pytest.approx(expected)
