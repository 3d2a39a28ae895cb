"""Helpers every trainer shares (the LSTM's and models.finetune): atomic checkpoints, loss plots."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch


def processor_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), for reports that must name their processor."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash mid-save never leaves a truncated
    checkpoint behind, so --resume always finds the last complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def plot_losses(history: list[dict[str, float]], path: Path, *, x: str = "epoch", title: str = "",
                ylabel: str = "cross-entropy (nats)") -> None:
    """Train and held-out loss against `x` (a key of each history entry) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    steps = [h[x] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    trained = [(s, h["train_loss"]) for s, h in zip(steps, history, strict=True) if h.get("train_loss") is not None]
    if trained:
        ax.plot(*zip(*trained, strict=True), "o-", label="train")
    ax.plot(steps, [h["val_loss"] for h in history], "o-", label="held-out")
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
