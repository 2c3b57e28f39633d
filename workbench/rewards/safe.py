"""`SafeReward`: a reward function that never takes a training run down.

A verifier that raises on one odd completion would otherwise kill a run hours in. SafeReward
calls the wrapped function on the whole batch; if that raises (or returns the wrong number of
rewards, a non-number, NaN or an infinity), it calls it again on each sample alone, and a sample that still fails
gets None: TRL turns None into NaN and leaves that sample out of this function's mean ("no reward
from this function"). It reports every failed sample to `on_error(name, index, exception)` and, when
TRL passes `log_metric`, logs `reward_errors/<name>` (0 on a clean batch) so failures show up on the
dashboard instead of silently.

`log_extra` / `log_metric` calls made by the wrapped function are buffered and forwarded only for
the attempt that counts, so a failed batch attempt cannot leave a half-written column behind.

A time limit (``timeout_s``, the config's ``reward_timeout_s``) bounds each call: the function
runs in a worker thread, and a call still running at the limit gives the whole batch no reward
(each sample counted as a failure, `RewardTimeout`), without a one-by-one retry that would cost
the limit again per sample. Python cannot stop a thread, so a hung function keeps its thread
(and any CPU it burns) until it returns; the next call gets a fresh worker.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict


class _Buffer:
    """Stands in for TRL's log_extra / log_metric during one attempt."""

    def __init__(self):
        self.extra: dict[str, list] = {}
        self.metrics: dict[str, list[float]] = defaultdict(list)

    def log_extra(self, column: str, values: list) -> None:
        self.extra.setdefault(column, []).extend(values)

    def log_metric(self, name: str, value: float) -> None:
        self.metrics[name].append(value)


class RewardTimeout(TimeoutError):
    """A reward function was still running when its call's time limit ran out."""


class NonFiniteReward(ValueError):
    """A reward function returned NaN or an infinity for a sample."""


def _as_reward(value) -> float | None:
    if value is None:
        return None  # the function's own "not applicable": not a failure
    value = float(value)  # raises on a non-number, which makes it a failure
    if not math.isfinite(value):
        # TRL would pass an infinity on to the group's mean and std, which zeroes (NaN) the whole
        # group's advantages without a word; NaN it drops silently. Both are failures here.
        raise NonFiniteReward(f"returned {value!r}, not a finite number")
    return value


class SafeReward:
    """Wrap reward `fn`: same `__name__`, same contract, never raises (failed samples -> None)."""

    def __init__(self, fn, on_error=None, name: str | None = None, timeout_s: float | None = None):
        self.fn = fn
        self.on_error = on_error
        self.timeout_s = timeout_s
        self.__name__ = name or getattr(fn, "__name__", type(fn).__name__)
        self.n_calls = 0
        self.n_errors = 0  # failed samples over the life of this object

    def _attempt(self, completions: list, kwargs: dict) -> tuple[list, _Buffer]:
        if not self.timeout_s:
            return self._call(completions, kwargs)
        # Written by hand rather than with concurrent.futures: its executor joins its threads at
        # interpreter exit, so one hung reward would hang the end of the run too. A daemon does not.
        box: dict = {}

        def work():
            try:
                box["result"] = self._call(completions, kwargs)
            except BaseException as e:  # handed to the caller below
                box["error"] = e

        worker = threading.Thread(target=work, name=f"reward-{self.__name__}", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise RewardTimeout(f"still running after {self.timeout_s:g} s (reward_timeout_s)")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _call(self, completions: list, kwargs: dict) -> tuple[list, _Buffer]:
        buf = _Buffer()
        # By keyword, as TRL calls rewards: a user's `def f(prompts, completions, **kw)` binds right.
        out = list(self.fn(completions=completions, **{**kwargs, "log_extra": buf.log_extra,
                                                       "log_metric": buf.log_metric}))
        if len(out) != len(completions):
            raise ValueError(f"returned {len(out)} rewards for {len(completions)} completions")
        return [_as_reward(v) for v in out], buf

    def __call__(self, completions, **kwargs):
        self.n_calls += 1
        log_extra = kwargs.pop("log_extra", None)
        log_metric = kwargs.pop("log_metric", None)
        failures: list[tuple[int, Exception]] = []
        try:
            rewards, buf = self._attempt(list(completions), kwargs)
            extra, metrics = buf.extra, buf.metrics
        except RewardTimeout as e:
            rewards, extra, metrics = [None] * len(completions), {}, {}
            failures.extend((i, e) for i in range(len(completions)))
        except Exception:
            rewards, extra, metrics = self._one_by_one(list(completions), kwargs, failures)
        self.n_errors += len(failures)
        for index, exc in failures:
            if self.on_error is not None:
                try:
                    self.on_error(self.__name__, index, exc)
                except Exception:
                    pass
        self._forward(log_extra, log_metric, extra, metrics, len(failures))
        return rewards

    def _one_by_one(self, completions: list, kwargs: dict, failures: list) -> tuple[list, dict, dict]:
        n = len(completions)
        rewards: list[float | None] = []
        extra: dict[str, list] = {}
        metrics: dict[str, list[float]] = defaultdict(list)
        for i in range(n):
            # Per-sample columns (lists of length n) are sliced; anything else (trainer_state) is shared.
            sample_kwargs = {
                k: [v[i]] if isinstance(v, (list, tuple)) and len(v) == n else v for k, v in kwargs.items()
            }
            try:
                (reward,), buf = self._attempt([completions[i]], sample_kwargs)
            except Exception as exc:
                failures.append((i, exc))
                reward, buf = None, _Buffer()
            rewards.append(reward)
            for column, values in buf.extra.items():
                # Pad with None so the column stays aligned with the batch.
                extra.setdefault(column, [None] * i)
                extra[column].extend(values[:1] or [None])
            for column in extra:
                if len(extra[column]) < i + 1:
                    extra[column].append(None)
            for name, values in buf.metrics.items():
                metrics[name].extend(values)
        return rewards, extra, metrics

    def _forward(self, log_extra, log_metric, extra: dict, metrics: dict, n_failed: int) -> None:
        try:
            if log_extra is not None:
                for column, values in extra.items():
                    log_extra(column, values)
            if log_metric is not None:
                for name, values in metrics.items():
                    log_metric(name, sum(values) / len(values))
                log_metric(f"reward_errors/{self.__name__}", n_failed)
        except Exception:
            pass  # logging must not cost the batch its rewards

    def __repr__(self) -> str:
        return f"SafeReward({self.fn!r})"
