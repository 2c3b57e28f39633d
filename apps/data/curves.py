"""The curves view: reward, length, KL and held-out accuracy per step, one or several runs overlaid."""

from __future__ import annotations

from apps.data.runs import RunData, pct

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d")


def smooth(values: list, weight: float) -> list:
    """TensorBoard's debiased exponential moving average; None values stay None."""
    if not weight or weight <= 0:
        return list(values)
    out, acc, n = [], 0.0, 0
    for v in values:
        if v is None:
            out.append(None)
            continue
        n += 1
        acc = acc * weight + (1 - weight) * v
        out.append(acc / (1 - weight ** n))
    return out


MAX_POINTS = 1500  # per series: a browser draws a 30,000-step run's curves as fast as a 1,500-step one


def sampled(n: int, limit: int = MAX_POINTS) -> list[int]:
    """Indices of at most about ``limit`` evenly spaced points of ``n``, the last one always kept."""
    if n <= limit:
        return list(range(n))
    stride = -(-n // limit)
    return list(range(0, n - 1, stride)) + [n - 1]


def empty_figure(text: str = "no run selected"):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template="plotly_white", height=300, xaxis_visible=False, yaxis_visible=False)
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


CURVE_PANELS = ("reward (mean ± std) · SFT loss · held-out accuracy ◆", "completion length (tokens): mean, max ┄",
                "truncation rate", "KL to the reference", "entropy", "step time (s): step, generation ┄")


def curves_figure(runs: list[RunData], smoothing: float = 0.0):
    """Training curves of one or more runs, overlaid (one colour per run)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=2, subplot_titles=CURVE_PANELS, vertical_spacing=0.09, horizontal_spacing=0.07)
    any_steps, any_kl = False, False
    for i, data in enumerate(runs):
        colour, name = PALETTE[i % len(PALETTE)], data.name
        ms = sorted((m for m in data.metrics if isinstance(m.get("step"), (int, float))), key=lambda m: m["step"])
        keep = sampled(len(ms))  # smoothing sees every step; the figure draws at most MAX_POINTS of them
        x = [ms[j]["step"] for j in keep]
        any_steps |= bool(x)

        def series(key, ms=ms, keep=keep):
            v = smooth([m.get(key) if isinstance(m.get(key), (int, float)) else None for m in ms], smoothing)
            return [v[j] for j in keep]

        def line(key, row, col, label, dash=None, legend=False, x=x, series=series, colour=colour, name=name):
            y = series(key)
            if all(v is None for v in y):
                return False
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers" if len(x) < 3 else "lines",
                                     name=f"{name} · {label}", legendgroup=name, showlegend=legend,
                                     line=dict(color=colour, dash=dash, width=1.5 if dash else 2.2)), row=row, col=col)
            return True

        mean, std = series("reward_mean"), series("reward_std")
        band = [(m, s) for m, s in zip(mean, std) if m is not None and s is not None]
        if band and len(band) == len(x):
            fig.add_trace(go.Scatter(x=x + x[::-1], y=[m + s for m, s in band] + [m - s for m, s in band][::-1],
                                     fill="toself", fillcolor=_rgba(colour, 0.12), line=dict(width=0),
                                     hoverinfo="skip", showlegend=False, legendgroup=name), row=1, col=1)
        line("reward_mean", 1, 1, "reward", legend=True)
        line("loss", 1, 1, "SFT loss", legend=True)  # SFT stages (workbench.stages.sft) log a loss, not a reward
        reward_keys = sorted({k for m in ms for k in m if k.startswith("rewards/") and k.endswith("/mean")})
        if len(reward_keys) > 1:  # with a single reward its mean is the total again
            for k in reward_keys:
                line(k, 1, 1, k.split("/")[1], dash="dot", legend=True)
        # Held-out accuracy: "before" is step 0, "after" the last step.
        evals = [e for e in data.events if e.get("event") == "eval" and e.get("phase") in ("before", "after")]
        if evals:
            last = x[-1] if x else (data.config().get("max_steps") or 0)
            fig.add_trace(go.Scatter(
                x=[0 if e["phase"] == "before" else last for e in evals], y=[e.get("accuracy") for e in evals],
                mode="markers", marker=dict(symbol="diamond", size=12, color=colour, line=dict(color="white", width=1)),
                error_y=dict(type="data", array=[e.get("stderr") or 0 for e in evals], color=colour),
                name=f"{name} · held-out acc.", legendgroup=name, hoverinfo="text",
                text=[f"held-out {e['phase']}: {pct(e.get('accuracy'))} of {e.get('n')}" for e in evals]),
                row=1, col=1)
        line("completion_length_mean", 1, 2, "length mean")
        line("completion_length_max", 1, 2, "length max", dash="dot")
        line("truncation_rate", 2, 1, "truncation rate")
        any_kl |= line("kl", 2, 2, "KL")
        line("entropy", 3, 1, "entropy")
        line("step_seconds", 3, 2, "step s")
        line("generation_seconds", 3, 2, "generation s", dash="dot")
    if not any_kl:
        xd, yd = fig.layout.xaxis4.domain, fig.layout.yaxis4.domain
        fig.add_annotation(text="not computed (beta = 0: no reference model)", showarrow=False, xref="paper",
                           yref="paper", x=sum(xd) / 2, y=sum(yd) / 2, font=dict(color="#6b7280"))
    if not any_steps:
        fig.add_annotation(text="no training steps logged yet", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=1.08, font=dict(size=14, color="#b45309"))
    fig.update_xaxes(title_text="step", row=3)
    fig.update_layout(height=760, margin=dict(l=40, r=20, t=60, b=40), template="plotly_white",
                      legend=dict(orientation="h", y=-0.08), hovermode="x unified")
    return fig
