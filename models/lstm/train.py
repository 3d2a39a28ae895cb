"""Train the topic LSTM on a generated corpus or plain-text files.

    python -m models.lstm.train --corpus data/corpus.jsonl --out data/lstm --epochs 30
    python -m models.lstm.train --corpus data/corpus.jsonl --out data/lstm --resume

Writes into --out: `last.pt` (resumable: weights, optimizer, scheduler, epoch, history),
`best.pt` (the lowest validation loss; what the bot loads), `metrics.json` and `loss.png`.
The held-out split is by topic and fixed by --split-seed, so the Markov chain and
`models.lstm.evaluate` measure on the same paragraphs.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from models.lstm.batches import batch_loss, batches, encode, mean_nll, perplexity
from models.lstm.model import LSTMConfig, TopicLSTM, load_checkpoint, save_checkpoint
from models.text.data import SPLIT_SEED, VAL_FRACTION, Example, load_examples, split_examples
from models.text.tokenizer import Vocab
from models.training import plot_losses

log = logging.getLogger(__name__)

MAX_LEN = 256  # tokens per training sequence; corpus paragraphs are ~120-180


@dataclass
class TrainConfig:
    """How to train; stored in checkpoints so --resume continues with the same settings."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-6
    grad_clip: float = 0.5
    patience: int = 3  # epochs without a better validation loss before stopping
    min_count: int = 2  # words seen once are <unk>: they teach the model to expect rare words
    seed: int = 0
    split_seed: int = SPLIT_SEED
    val_fraction: float = VAL_FRACTION


def prepare(
    paths: list[Path], tc: TrainConfig, vocab_size: int
) -> tuple[Vocab, list[Example], list[Example]]:
    """Vocabulary (from the training split only) and the (train, held-out) examples."""
    train, val = split_examples(load_examples(paths), tc.val_fraction, tc.split_seed)
    texts = [e.text for e in train] + [e.topic for e in train]
    return Vocab.build(texts, vocab_size, tc.min_count), train, val


def run_epoch(
    model: TopicLSTM,
    opt: torch.optim.Optimizer,
    vocab: Vocab,
    seqs: list[list[int]],
    tc: TrainConfig,
    rng: random.Random,
    device: torch.device,
    desc: str,
) -> float:
    """One pass over the training sequences; returns the mean training NLL per target."""
    from tqdm import tqdm

    model.train()
    total, count = 0.0, 0
    n_batches = (len(seqs) + tc.batch_size - 1) // tc.batch_size
    with tqdm(batches(vocab, seqs, tc.batch_size, rng), total=n_batches, desc=desc, leave=False) as bar:
        for batch in bar:
            batch = batch.to(device)
            loss = batch_loss(model, batch)
            opt.zero_grad(set_to_none=True)
            (loss / batch.n_targets).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            total, count = total + loss.item(), count + batch.n_targets
            bar.set_postfix(loss=f"{total / count:.3f}")
    return total / max(1, count)


def train(
    paths: list[Path], out: Path, tc: TrainConfig, mc: LSTMConfig, device: str = "cpu", resume: bool = False
) -> dict[str, Any]:
    """Train (or resume) into `out`; return the metrics also written to metrics.json."""
    torch.manual_seed(tc.seed)
    dev = torch.device(device)
    last, best = out / "last.pt", out / "best.pt"
    state: dict[str, Any] = {"epoch": 0, "history": [], "best_val": float("inf"), "bad_epochs": 0}
    if resume and last.exists():
        model, tokens, ckpt = load_checkpoint(last, dev)
        tc = TrainConfig(**{**ckpt["train_config"], "epochs": tc.epochs})
        vocab = Vocab(tokens)
        _, train_ex, val_ex = prepare(paths, tc, len(vocab))
        state = ckpt["state"]
        log.info("resuming from %s after epoch %d", last, state["epoch"])
    else:
        vocab, train_ex, val_ex = prepare(paths, tc, mc.vocab_size)
        model = TopicLSTM(LSTMConfig(**{**asdict(mc), "vocab_size": len(vocab)})).to(dev)
        ckpt = {}
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    if ckpt:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
    train_seqs, val_seqs = encode(vocab, train_ex, MAX_LEN), encode(vocab, val_ex, MAX_LEN)
    log.info(
        "%d train / %d held-out paragraphs, vocab %d, %d parameters",
        len(train_seqs),
        len(val_seqs),
        len(vocab),
        model.num_params(),
    )
    rng = random.Random(tc.seed + state["epoch"])  # a resumed run does not replay epoch 1's order
    while state["epoch"] < tc.epochs and state["bad_epochs"] < tc.patience:
        start = time.monotonic()
        epoch = state["epoch"] + 1
        train_loss = run_epoch(model, opt, vocab, train_seqs, tc, rng, dev, f"epoch {epoch}")
        val_loss = mean_nll(model, vocab, val_seqs)
        sched.step(val_loss)
        state["history"].append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": opt.param_groups[0]["lr"],
                "seconds": time.monotonic() - start,
            }
        )
        state["epoch"] = epoch
        log.info(
            "epoch %d: train %.3f, held-out %.3f (ppl %.1f)",
            epoch,
            train_loss,
            val_loss,
            perplexity(val_loss),
        )
        if val_loss < state["best_val"]:
            state["best_val"], state["bad_epochs"] = val_loss, 0
            save_checkpoint(best, model, vocab.itos, train_config=asdict(tc), epoch=epoch)
        else:
            state["bad_epochs"] += 1
        save_checkpoint(
            last,
            model,
            vocab.itos,
            train_config=asdict(tc),
            state=state,
            optimizer=opt.state_dict(),
            scheduler=sched.state_dict(),
        )
    return write_metrics(out, vocab, val_seqs, train_seqs, state, dev)


def write_metrics(
    out: Path,
    vocab: Vocab,
    val_seqs: list[list[int]],
    train_seqs: list[list[int]],
    state: dict[str, Any],
    device: torch.device,
) -> dict[str, Any]:
    """Measure the best checkpoint on the held-out split; write metrics.json and loss.png."""
    model, _, ckpt = load_checkpoint(out / "best.pt", device)
    val_nll = mean_nll(model, vocab, val_seqs)
    n_tokens = sum(len(s) for s in train_seqs)
    unk = sum(s.count(vocab.unk) for s in train_seqs)
    metrics_path = out / "metrics.json"
    metrics: dict[str, Any] = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    metrics.update(
        {
            "config": ckpt["config"],
            "train_config": ckpt["train_config"],
            "parameters": model.num_params(),
            "vocab_size": len(vocab),
            "train_paragraphs": len(train_seqs),
            "heldout_paragraphs": len(val_seqs),
            "train_tokens": n_tokens,
            "train_unk_rate": round(unk / max(1, n_tokens), 4),
            "best_epoch": ckpt["epoch"],
            "epochs_run": state["epoch"],
            "heldout_nll": round(val_nll, 4),
            "heldout_perplexity": round(perplexity(val_nll), 2),
            "history": state["history"],
        }
    )
    metrics_path.write_text(json.dumps(metrics, indent=2))
    plot_losses(state["history"], out / "loss.png", title="Topic LSTM", ylabel="cross-entropy per word (nats)")
    return metrics


def main(argv: list[str] | None = None) -> None:
    d, m = TrainConfig(), LSTMConfig()
    p = argparse.ArgumentParser(description="Train the topic LSTM.")
    p.add_argument("--corpus", type=Path, nargs="+", required=True, help=".jsonl corpus or .txt files")
    p.add_argument("--out", type=Path, default=Path("data/lstm"))
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--split-seed", type=int, default=d.split_seed)
    p.add_argument("--vocab-size", type=int, default=m.vocab_size)
    p.add_argument("--n-embd", type=int, default=m.n_embd)
    p.add_argument("--n-hidden", type=int, default=m.n_hidden)
    p.add_argument("--n-layer", type=int, default=m.n_layer)
    p.add_argument("--dropout", type=float, default=m.dropout)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tc = TrainConfig(
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        patience=a.patience,
        seed=a.seed,
        split_seed=a.split_seed,
    )
    mc = LSTMConfig(
        vocab_size=a.vocab_size, n_embd=a.n_embd, n_hidden=a.n_hidden, n_layer=a.n_layer, dropout=a.dropout
    )
    metrics = train(a.corpus, a.out, tc, mc, a.device, a.resume)
    log.info("held-out perplexity %.2f (best epoch %d)", metrics["heldout_perplexity"], metrics["best_epoch"])


if __name__ == "__main__":
    main()
