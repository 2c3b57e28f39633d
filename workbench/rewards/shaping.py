"""Shaping rewards reused from TRL (`trl.rewards`), renamed and adapted to plain-text completions.

- repetition: `get_repetition_penalty_reward(ngram_size=3, max_penalty=-1.0)`: minus the share of
  repeated token 3-grams (0 for none, towards -1 for a loop). Reads `completion_ids`.
- overlong: `get_soft_overlong_punishment` (DAPO): 0 up to `max_completion_length - cache`
  tokens, then falling linearly to -1 at `max_completion_length`. Reads `completion_ids`.
- length: `get_cosine_scaled_reward` ("Demystifying Long CoT"): correct answers earn more when
  short, wrong ones are punished less when long. TRL's version wants chat completions and a
  `solution` column and judges correctness with math-verify, which looks for a LaTeX/boxed
  answer; we pass it `\\boxed{<extracted answer>}` so it judges the model's final answer rather
  than the first number in the reasoning. Correctness there is math-verify's numeric
  equivalence, not the task's verifier, so this reward fits tasks with numeric answers.

TRL is imported when a reward is built, not when this module is imported.
"""

from __future__ import annotations

from workbench.rewards.extract import completion_text, extract_answer


def _ids(completion_ids, name: str) -> list:
    if completion_ids is None:
        raise ValueError(f"reward {name!r} needs completion_ids (passed by TRL's GRPOTrainer)")
    return completion_ids


class RepetitionReward:
    __name__ = "repetition"

    def __init__(self, ngram_size: int = 3, max_penalty: float = -1.0):
        from trl.rewards import get_repetition_penalty_reward

        self._fn = get_repetition_penalty_reward(ngram_size=ngram_size, max_penalty=max_penalty)

    def __call__(self, completions, completion_ids=None, **kwargs):
        return self._fn(completion_ids=_ids(completion_ids, self.__name__))


class OverlongReward:
    __name__ = "overlong"

    def __init__(self, max_completion_length: int, soft_punish_cache: int | None = None):
        from trl.rewards import get_soft_overlong_punishment

        if soft_punish_cache is None:
            # DAPO punishes the last 4k of 20k tokens; keep that one-fifth share at any length.
            soft_punish_cache = max(1, max_completion_length // 5)
        self.max_completion_length = max_completion_length
        self.soft_punish_cache = soft_punish_cache
        self._fn = get_soft_overlong_punishment(max_completion_length, soft_punish_cache)

    def __call__(self, completions, completion_ids=None, **kwargs):
        return self._fn(completion_ids=_ids(completion_ids, self.__name__))


class LengthReward:
    __name__ = "length"

    def __init__(self, task, max_completion_length: int, **cosine_kwargs):
        from trl.rewards import get_cosine_scaled_reward

        self.task = task
        self._fn = get_cosine_scaled_reward(max_len=max_completion_length, **cosine_kwargs)

    def __call__(self, completions, answer=None, completion_ids=None, **kwargs):
        if answer is None:
            raise ValueError("reward 'length' needs the dataset's 'answer' column")
        chat = []
        for c in completions:
            text = completion_text(c)
            pred = extract_answer(text, self.task.answer_kind)
            chat.append([{"role": "assistant", "content": f"\\boxed{{{pred}}}" if pred else text}])
        return self._fn(chat, solution=[str(a) for a in answer], completion_ids=_ids(completion_ids, self.__name__))
