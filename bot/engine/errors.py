"""Errors as the engine reports them: out of memory told apart, and one line fit for users."""

from __future__ import annotations


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch_oom_types()) or "out of memory" in str(error).lower()


def torch_oom_types() -> tuple[type[BaseException], ...]:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    return (MemoryError,) + ((oom,) if oom else ())


def friendly_error(error: BaseException) -> str:
    """A one-line reason fit for users and logs (no traceback, no secrets)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]
