"""The command line of models.finetune: read sources, split, train, measure, export.

    python -m models.finetune --model smollm2 --data data/corpus.jsonl --out runs/ft-smollm2
    python -m models.finetune --model gpt2 --data my_stories/*.txt --full --max-steps 500
    python -m models.finetune --from-db storybot.db --out runs/ft-ours --resume

OUT ends up a regular model folder (config.json, model.safetensors, tokenizer with its chat
template, finetune.json) plus loss.png and checkpoint/ (last.pt for --resume, best.pt).
Offer it to a server with ALLOWED_MODELS=/path/to/OUT and `/settings set model /path/to/OUT`.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.finetune.adapters import LoraSettings, count_parameters, load_trainable_state, make_trainable
from models.finetune.examples import encode, perplexity
from models.finetune.export import export_folder
from models.finetune.loop import LoopSettings, train_loop
from models.finetune.sources import gather
from models.hf import load_hf_model, pick_device
from models.registry import CORPUS
from models.text.data import SPLIT_SEED, VAL_FRACTION, split_examples
from models.training import plot_losses, processor_name

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """One run: what to train, on what, and how. Stored in checkpoints so --resume matches."""

    model: str = "smollm2"
    data: list[str] = field(default_factory=list)
    from_db: str | None = None
    method: str = "lora"
    max_length: int = 256  # tokens per example, prompt included
    val_fraction: float = VAL_FRACTION
    split_seed: int = SPLIT_SEED
    device: str = "auto"
    loop: LoopSettings = field(default_factory=LoopSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)


def run(config: FinetuneConfig, out: Path, resume: bool = False) -> dict[str, Any]:
    """Fine-tune per `config` into `out`; return the report also written to OUT/finetune.json."""
    config = _resumed(config, out) if resume else config
    (out / "checkpoint").mkdir(parents=True, exist_ok=True)
    (out / "checkpoint" / "config.json").write_text(json.dumps(asdict(config), indent=2))
    torch.manual_seed(config.loop.seed)
    paragraphs = gather([Path(p) for p in config.data], Path(config.from_db) if config.from_db else None)
    train_par, val_par = split_examples(paragraphs, config.val_fraction, config.split_seed)
    if not val_par:
        raise ValueError("need paragraphs on at least two topics to hold some out")
    device = pick_device(config.device)
    # float32 for training everywhere: fp16 weights without loss scaling lose small updates.
    base = load_hf_model(config.model, device, dtype=torch.float32)
    train_set = [encode(base, p, config.max_length) for p in train_par]
    val_set = [encode(base, p, config.max_length) for p in val_par]
    model = make_trainable(base.model, config.method, config.lora)
    trainable, total = count_parameters(model)
    log.info("%s on %s: %d train / %d held-out paragraphs, %d of %d parameters train (%s)",
             config.model, device, len(train_set), len(val_set), trainable, total, config.method)
    state = train_loop(model, train_set, val_set, base.pad_id, device, config.loop, out / "checkpoint",
                       resume, asdict(config))
    best = torch.load(out / "checkpoint" / "best.pt", map_location="cpu", weights_only=True)
    load_trainable_state(model, best["trainable"])
    before, after = state.history[0]["val_loss"], min(h["val_loss"] for h in state.history)
    report = {
        "base_model": config.model, "method": config.method, "device": str(device),
        "processor": torch.cuda.get_device_name(device) if device.type == "cuda" else processor_name(),
        "dtype": "float32",
        "train_paragraphs": len(train_set), "heldout_paragraphs": len(val_set),
        "trainable_parameters": trainable, "total_parameters": total,
        "steps": state.step, "best_step": best["step"], "stopped": state.stopped,
        "seconds": round(state.seconds, 1),
        "heldout_perplexity_before": round(perplexity(before), 3),
        "heldout_perplexity_after": round(perplexity(after), 3),
        "history": state.history, "config": asdict(config),
    }
    export_folder(model, base.tokenizer, out, report)
    plot_losses(state.history, out / "loss.png", x="step", title=f"fine-tuning {config.model} ({config.method})",
                ylabel="cross-entropy per token (nats)")
    return report


def _resumed(config: FinetuneConfig, out: Path) -> FinetuneConfig:
    """The stored run's configuration (model, data, method, split), with this call's limits
    (max steps, minutes), so a resumed run trains the same thing for as long as now asked."""
    stored_path = out / "checkpoint" / "config.json"
    if not stored_path.exists():
        return config
    stored = json.loads(stored_path.read_text())
    loop = LoopSettings(**{**stored["loop"], "max_steps": config.loop.max_steps,
                           "max_minutes": config.loop.max_minutes})
    return FinetuneConfig(**{**stored, "loop": loop, "lora": LoraSettings(**stored["lora"])})


def _parser() -> argparse.ArgumentParser:
    d, lp, lr = FinetuneConfig(), LoopSettings(), LoraSettings()
    p = argparse.ArgumentParser(prog="python -m models.finetune", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=d.model, help="smollm2 (embedded), a hub id or a local folder")
    p.add_argument("--data", type=Path, nargs="*", default=None,
                   help=f".jsonl corpora, .txt or .md files (default: {CORPUS.name} unless --from-db)")
    p.add_argument("--from-db", type=Path, help="also train on the stories in the bot's SQLite database")
    p.add_argument("--out", type=Path, required=True, help="the model folder to write (e.g. runs/ft-mine)")
    p.add_argument("--full", action="store_true", help="train every weight instead of LoRA adapters")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint/last.pt")
    p.add_argument("--max-steps", type=int, default=lp.max_steps)
    p.add_argument("--max-minutes", type=float, default=lp.max_minutes, help="stop after this long (0: no limit)")
    p.add_argument("--batch-size", type=int, default=lp.batch_size)
    p.add_argument("--lr", type=float, help="peak learning rate (default 2e-4 for LoRA, 3e-5 for --full)")
    p.add_argument("--eval-every", type=int, default=lp.eval_every)
    p.add_argument("--patience", type=int, default=lp.patience)
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--lora-r", type=int, default=lr.r)
    p.add_argument("--lora-layers", type=int, default=lr.top_layers,
                   help="adapt only the last N transformer blocks (0: all; cheaper steps on a CPU)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--seed", type=int, default=lp.seed)
    p.add_argument("--device", default=d.device, help="auto (the GPU when there is one), cpu or cuda")
    return p


def config_from_args(a: argparse.Namespace) -> FinetuneConfig:
    """The run's configuration from parsed arguments."""
    data = [str(p) for p in a.data] if a.data else ([] if a.from_db else [str(CORPUS)])
    lr = a.lr if a.lr is not None else (3e-5 if a.full else 2e-4)
    loop = LoopSettings(lr=lr, batch_size=a.batch_size, max_steps=a.max_steps, max_minutes=a.max_minutes,
                        eval_every=a.eval_every, patience=a.patience, seed=a.seed)
    return FinetuneConfig(model=a.model, data=data, from_db=str(a.from_db) if a.from_db else None,
                          method="full" if a.full else "lora", max_length=a.max_length,
                          val_fraction=a.val_fraction, device=a.device, loop=loop,
                          lora=LoraSettings(r=a.lora_r, alpha=2 * a.lora_r, top_layers=a.lora_layers))


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input ends with one clear line and exit status 2, not a traceback."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        report = run(config_from_args(args), args.out, args.resume)
    except (ValueError, FileNotFoundError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    log.info("held-out perplexity %.2f -> %.2f in %d steps (%.0f s, %s); model folder: %s",
             report["heldout_perplexity_before"], report["heldout_perplexity_after"], report["steps"],
             report["seconds"], report["stopped"], args.out)
    log.info("%s", json.dumps({k: v for k, v in report.items() if k not in ("history", "config")}, indent=2))
