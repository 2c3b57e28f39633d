"""What a run cost: devices, wall time, device-hours, tokens and an estimated price.

A run's start event records the job's devices (``this_job``); ``estimate`` turns a run's events,
metrics and config into device-hours and dollars, for a running run too. Prices are per device-hour:
a GPU-hour (default $2, the rental rate DeepSeek-R1's paper used for its training cost: 512 H800s,
198 h for R1-Zero and 80 h for R1, about $294k), or for a CPU run a core-hour (default $0.05, about
a cloud on-demand vCPU-hour). Both are config keys (``gpu_hour_price``, ``cpu_core_hour_price``).

No torch import at module level: the app reads costs without it.
"""

from __future__ import annotations

import os
import time

GPU_HOUR_PRICE = 2.0  # USD per GPU-hour (DeepSeek-R1, Nature 2025: the rate behind its $294k)
CPU_CORE_HOUR_PRICE = 0.05  # USD per core-hour


def this_job(device: str) -> dict:
    """The devices this job trains on: {"type": "cuda"|"cpu"|..., "name", "count", "unit"}.

    ``count``: GPUs (one per process, as accelerate launches them) or, on a CPU, the cores its
    processes use (processes x threads, at most the machine's cores). ``unit``: "GPU" or "core"."""
    from workbench.distributed import world_size

    processes = world_size()
    if device == "cuda":
        import torch

        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cuda"
        return {"type": "cuda", "name": name, "count": processes, "unit": "GPU"}
    if device == "cpu":
        import torch

        cores = min(os.cpu_count() or 1, processes * torch.get_num_threads())
        return {"type": "cpu", "name": cpu_name(), "count": cores, "unit": "core", "processes": processes}
    return {"type": device, "name": device, "count": processes, "unit": "device"}


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo's "model name"; ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"


def wall_seconds(events: list[dict], metrics: list[dict], running: bool, now: float | None = None) -> float | None:
    """Seconds the run's processes ran, summed over its segments (a start, then each resume): a
    segment lasts from its start/resume event to the last record written before the next one (its
    end event, or now while it runs). None without a start event."""
    starts = [e["time"] for e in events if e.get("event") in ("start", "resume") and isinstance(e.get("time"), (int, float))]
    if not starts:
        return None
    times = sorted(t for t in [e.get("time") for e in events] + [m.get("time") for m in metrics]
                   if isinstance(t, (int, float)))
    total = 0.0
    for i, t0 in enumerate(starts):
        t1 = starts[i + 1] if i + 1 < len(starts) else float("inf")
        seen = [t for t in times if t0 <= t < t1]
        last = max(seen, default=t0)
        if i == len(starts) - 1 and running:
            last = max(last, now if now is not None else time.time())
        total += last - t0
    return total


def estimate(events: list[dict], metrics: list[dict], config: dict, running: bool = False,
             now: float | None = None) -> dict | None:
    """A run's cost: {"device", "name", "count", "unit", "wall_hours", "device_hours", "price_per_hour"
    (USD per unit-hour), "cost_usd", "generated_tokens", "trained_tokens"}; None for a run whose start
    event recorded no devices (made before costs were recorded).

    generated_tokens: the rollouts' tokens, summed over steps (all processes). trained_tokens: TRL's
    ``num_tokens`` (prompt and completion tokens through the policy's forward-backward, all processes)."""
    start = next((e for e in events if e.get("event") == "start"), None)
    devices = (start or {}).get("devices")
    if not isinstance(devices, dict):
        return None
    wall = wall_seconds(events, metrics, running, now) or 0.0
    gpu = devices.get("unit") == "GPU"
    price = config.get("gpu_hour_price" if gpu else "cpu_core_hour_price")
    price = float(price) if isinstance(price, (int, float)) else (GPU_HOUR_PRICE if gpu else CPU_CORE_HOUR_PRICE)
    count = devices.get("count") or 1
    generated = [m.get("generated_tokens") for m in metrics if isinstance(m.get("generated_tokens"), (int, float))]
    trained = [m.get("num_tokens") for m in metrics if isinstance(m.get("num_tokens"), (int, float))]
    device_hours = wall / 3600 * count
    return {"device": devices.get("type"), "name": devices.get("name"), "count": count, "unit": devices.get("unit"),
            "wall_hours": wall / 3600, "device_hours": device_hours, "price_per_hour": price,
            "cost_usd": device_hours * price, "generated_tokens": int(sum(generated)) if generated else None,
            "trained_tokens": int(trained[-1]) if trained else None}


def describe(c: dict | None) -> str:
    """One line: "2 cores (AMD EPYC ...) x 0.06 h = 0.12 core-hours, $0.006 at $0.05/core-hour; 41k tokens
    generated". Empty for None."""
    if not c:
        return ""
    unit = c.get("unit") or "device"
    out = (f"{c['count']} {unit}{'s' if c['count'] != 1 else ''} ({c.get('name')}) x {c['wall_hours']:.2f} h = "
           f"{c['device_hours']:.3g} {unit}-hours, ${c['cost_usd']:.3g} at ${c['price_per_hour']:g}/{unit}-hour")
    if c.get("generated_tokens"):
        out += f"; {c['generated_tokens']:,} tokens generated"
    if c.get("trained_tokens"):
        out += f", {c['trained_tokens']:,} trained"
    return out
