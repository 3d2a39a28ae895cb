"""The training loop: AdamW with warm-up, held-out evaluation, early stopping, resumable checkpoints.

Checkpoints go to OUT/checkpoint/: `last.pt` (trainable weights, optimizer, scheduler, step,
history, the config) after every evaluation and at the end, so --resume continues from the last
saved step; `best.pt` (trainable weights of the lowest held-out loss), what gets exported.
The batch order of any step is a function of (seed, step), so a resumed run sees the same
batches an uninterrupted one would have.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.finetune.adapters import load_trainable_state, trainable_state
from models.finetune.examples import Encoded, collate, mean_nll, perplexity, summed_nll
from models.training import save_atomic

log = logging.getLogger(__name__)


@dataclass
class LoopSettings:
    """How long and how fast to train."""

    lr: float = 2e-4
    batch_size: int = 8
    max_steps: int = 300
    max_minutes: float = 0.0  # 0: no time limit; the acceptance run uses 10
    eval_every: int = 25
    patience: int = 3  # evaluations without a better held-out loss before stopping
    warmup_steps: int = 10
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0


@dataclass
class LoopState:
    """What --resume needs besides the weights and the optimizer."""

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = float("inf")
    bad_evals: int = 0
    seconds: float = 0.0
    stopped: str = ""


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> list[int]:
    """The example indices of training step `step` (0-based): epochs of seeded permutations."""
    per_epoch = max(1, -(-n // batch_size))
    epoch, k = divmod(step, per_epoch)
    order = list(range(n))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return order[k * batch_size:(k + 1) * batch_size]


def _schedule(settings: LoopSettings) -> Any:
    """Linear warm-up, then linear decay to a tenth of the peak at max_steps."""
    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        remaining = max(1, settings.max_steps - settings.warmup_steps)
        return max(0.1, 1.0 - 0.9 * (step - settings.warmup_steps) / remaining)
    return factor


def train_loop(model: torch.nn.Module, train: list[Encoded], val: list[Encoded], pad_id: int,
               device: torch.device, settings: LoopSettings, folder: Path, resume: bool,
               extra: dict[str, Any]) -> LoopState:
    """Train until max_steps, the time limit or early stopping; return the final state.

    `extra` (the run's configuration) is stored in every checkpoint.
    """
    from tqdm import tqdm

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(settings))
    state, last, best = LoopState(), folder / "last.pt", folder / "best.pt"
    if resume and last.exists():
        state = _restore(last, model, opt, sched)
    if not state.history:  # the "before" figure: held-out loss of the untouched model
        before = mean_nll(model, val, pad_id, device)
        state.history.append({"step": 0, "train_loss": None, "val_loss": before, "seconds": 0.0})  # type: ignore[dict-item]
        state.best_val = before
        save_atomic({"trainable": trainable_state(model), "step": 0}, best)
        log.info("held-out perplexity before: %.2f", perplexity(before))

    def save_last() -> None:
        save_atomic({"trainable": trainable_state(model), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "state": state.__dict__, "config": extra,
                     "rng": torch.get_rng_state()}, last)

    began, run_loss, run_count = time.monotonic() - state.seconds, 0.0, 0
    model.train()
    bar = tqdm(total=settings.max_steps, initial=state.step, desc="fine-tuning", unit="step")
    while True:
        state.stopped = _reason_to_stop(state, settings, began)
        if state.stopped:
            break
        picked = [train[i] for i in batch_indices(state.step, len(train), settings.batch_size, settings.seed)]
        batch = {k: v.to(device) for k, v in collate(picked, pad_id).items()}
        loss, n = summed_nll(model, batch)
        opt.zero_grad(set_to_none=True)
        (loss / max(1, n)).backward()
        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        opt.step()
        sched.step()
        state.step += 1
        run_loss, run_count = run_loss + float(loss.detach()), run_count + n
        bar.update(1)
        bar.set_postfix(loss=f"{run_loss / max(1, run_count):.3f}")
        if state.step % settings.eval_every == 0 or state.step >= settings.max_steps:
            _evaluate(model, val, pad_id, device, state, run_loss / max(1, run_count), began, best)
            run_loss, run_count = 0.0, 0
            save_last()
    bar.close()
    if run_count:  # stopped between evaluations (time limit): measure where it stopped
        _evaluate(model, val, pad_id, device, state, run_loss / run_count, began, best)
    state.seconds = time.monotonic() - began
    save_last()
    return state


def _restore(last: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any) -> LoopState:
    """Weights, optimizer, scheduler and RNG from `last`; the loop state to go on from."""
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    load_trainable_state(model, ckpt["trainable"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"])  # LoRA dropout draws on it: same masks as an unbroken run
    log.info("resuming from %s at step %d", last, ckpt["state"]["step"])
    return LoopState(**{**ckpt["state"], "stopped": ""})  # asked to go on: limits are re-checked


def _reason_to_stop(state: LoopState, settings: LoopSettings, began: float) -> str:
    """Why training ends now ("max_steps", "time limit", "early stopping"), or "" to go on."""
    if state.step >= settings.max_steps:
        return "max_steps"
    if settings.max_minutes and time.monotonic() - began > settings.max_minutes * 60:
        return "time limit"
    if state.bad_evals >= settings.patience:
        return "early stopping"
    return ""


def _evaluate(model: torch.nn.Module, val: list[Encoded], pad_id: int, device: torch.device,
              state: LoopState, train_loss: float, began: float, best: Path) -> None:
    """Held-out loss now; keep the best weights; count evaluations without improvement."""
    val_loss = mean_nll(model, val, pad_id, device)
    state.seconds = time.monotonic() - began
    state.history.append({"step": state.step, "train_loss": train_loss, "val_loss": val_loss,
                          "seconds": round(state.seconds, 1)})
    log.info("step %d: train %.3f, held-out %.3f (perplexity %.2f)", state.step, train_loss, val_loss,
             perplexity(val_loss))
    if val_loss < state.best_val:
        state.best_val, state.bad_evals = val_loss, 0
        save_atomic({"trainable": trainable_state(model), "step": state.step}, best)
    else:
        state.bad_evals += 1
