"""models.finetune: LoRA and full fine-tuning of a tiny GPT-2, the bot's stories as a source, resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from bot.storage import Storage
from models.base import Prompt
from models.finetune.cli import main
from models.finetune.examples import encode
from models.finetune.sources import read_stories
from models.hf import load_hf_model
from models.params import GenerationParams
from models.registry import load_model
from tests.tiny_models import TRAINING_TEXT, write_tiny_gpt2

CPU = torch.device("cpu")
GUILD, CHANNEL, OTHER_CHANNEL, AUTHOR = 111111111111111111, 222222222222222222, 333333333333333333, 444444444444444444


def write_corpus(folder: Path) -> Path:
    """A small {"topic", "text"} corpus: the tiny model's own sentences on eight topics."""
    path = folder / "corpus.jsonl"
    lines = [json.dumps({"topic": f"topic {i % 8}", "text": " ".join(TRAINING_TEXT[i:i + 3])}) for i in range(40)]
    path.write_text("\n".join(lines) + "\n")
    return path


def finetune(model_dir: Path, corpus: Path, out: Path, *extra: str) -> dict:
    main(["--model", str(model_dir), "--data", str(corpus), "--out", str(out), "--batch-size", "4",
          "--eval-every", "2", "--patience", "100", "--val-fraction", "0.25", *extra])
    return json.loads((out / "finetune.json").read_text())


def train_losses(report: dict) -> list[float]:
    return [h["train_loss"] for h in report["history"] if h["train_loss"] is not None]


async def generate_with_engine(model_name: str) -> str:
    """A paragraph from the folder, loaded the way the bot loads the `model` setting."""
    params = GenerationParams(model=model_name, strategy="greedy", max_new_tokens=12, min_new_tokens=12)
    async with Engine(lambda name: load_model(name, CPU), model_name) as engine:
        event = await engine.submit(GenerationRequest(Prompt("a storm"), params, fairness_key="c")).result()
    assert event.kind == "done", event
    return event.text


@pytest.mark.parametrize("method", ["lora", "full"])
async def test_finetuning_lowers_the_training_loss_and_writes_a_folder_the_bot_loads(
        tmp_path: Path, method: str) -> None:
    model_dir = write_tiny_gpt2(tmp_path / "tiny")
    out = tmp_path / "out"
    flags = ["--full", "--lr", "3e-3"] if method == "full" else ["--lr", "1e-2"]
    report = finetune(model_dir, write_corpus(tmp_path), out, "--max-steps", "12", *flags)

    losses = train_losses(report)
    assert report["method"] == method and report["steps"] == 12
    assert losses[-1] < losses[0]
    assert report["heldout_perplexity_after"] < report["heldout_perplexity_before"]
    assert (out / "model.safetensors").exists() and (out / "loss.png").exists()
    assert not (out / "adapter_config.json").exists()  # LoRA was merged, not saved as an adapter
    loaded = load_hf_model(str(out), CPU)
    assert type(loaded.model).__name__ == "GPT2LMHeadModel"
    assert (await generate_with_engine(str(out))).strip()


async def test_a_chat_model_keeps_its_chat_template(tmp_path: Path) -> None:
    model_dir = write_tiny_gpt2(tmp_path / "tiny", chat=True)
    out = tmp_path / "out"
    finetune(model_dir, write_corpus(tmp_path), out, "--max-steps", "2")
    assert load_hf_model(str(out), CPU).is_chat


async def test_training_prompts_are_the_ones_the_engine_sends(tmp_path: Path) -> None:
    from models.finetune.sources import Paragraph

    model = load_hf_model(str(write_tiny_gpt2(tmp_path / "tiny", chat=True)), CPU)
    example = encode(model, Paragraph("a storm", "The boats pulled at their ropes."), 512)
    assert example.ids[:example.prompt_length] == model.encode_prompt(Prompt("a storm"), 64)
    assert model.tokenizer.decode(example.ids[example.prompt_length:]).startswith("The boats pulled")


async def write_story_database(path: Path) -> None:
    """Two stories through the bot's real Storage (migrations included), one of them forgotten."""
    async with await Storage.open(path) as storage:
        story, _ = await storage.start_story(
            guild_id=GUILD, channel_id=CHANNEL, author_id=AUTHOR, topic="a lighthouse keeper", model="smollm2",
            kind="write", text="The keeper climbed the stairs at dusk.", settings={})
        await storage.add_turn(story.id, kind="user", author_id=AUTHOR, settings={},
                               text=f"<@{AUTHOR}> and <#{CHANNEL}> watched the lamp, id {GUILD}.")
        await storage.add_turn(story.id, kind="continue", author_id=AUTHOR, settings={},
                               text="The storm broke over the rocks.")
        await storage.start_story(
            guild_id=GUILD, channel_id=OTHER_CHANNEL, author_id=AUTHOR, topic="a secret recipe", model="lstm",
            kind="write", text="Forgotten words about bread.", settings={})
        await storage.forget(OTHER_CHANNEL)


async def test_from_db_reads_the_stories_without_any_id_and_without_forgotten_ones(tmp_path: Path) -> None:
    db = tmp_path / "storybot.db"
    await write_story_database(db)

    paragraphs = read_stories(db)

    texts = [p.text for p in paragraphs]
    assert texts == ["The keeper climbed the stairs at dusk.", "and watched the lamp, id .",
                     "The storm broke over the rocks."]
    assert paragraphs[2].history == tuple(texts[:2]) and paragraphs[2].topic == "a lighthouse keeper"
    everything = " ".join(texts + [p.topic for p in paragraphs] + [h for p in paragraphs for h in p.history])
    assert not re.search(r"\d{6,}", everything)
    assert "bread" not in everything


async def test_from_db_reads_a_branchs_copied_paragraphs_once(tmp_path: Path) -> None:
    db = tmp_path / "storybot.db"
    await write_story_database(db)
    async with await Storage.open(db) as storage:  # "Continue from here" on the first paragraph
        (story,) = await storage.stories_here(CHANNEL)
        branch, _ = await storage.branch_story(story.id, 0, guild_id=GUILD, channel_id=CHANNEL, author_id=AUTHOR)
        await storage.add_turn(branch.id, kind="continue", author_id=AUTHOR, settings={},
                               text="A gull landed on the rail.")
    texts = [p.text for p in read_stories(db)]
    assert texts.count("The keeper climbed the stairs at dusk.") == 1 and texts[-1] == "A gull landed on the rail."


async def test_from_db_trains_and_its_report_names_no_id(tmp_path: Path) -> None:
    db = tmp_path / "storybot.db"
    await write_story_database(db)
    async with await Storage.open(db) as storage:  # a second topic, so some can be held out
        await storage.start_story(guild_id=GUILD, channel_id=CHANNEL, author_id=AUTHOR, topic="a harbour",
                                  model="smollm2", kind="write", text="Boats rocked in the harbour.", settings={})
    out = tmp_path / "out"
    main(["--model", str(write_tiny_gpt2(tmp_path / "tiny")), "--from-db", str(db), "--out", str(out),
          "--max-steps", "2", "--batch-size", "2", "--val-fraction", "0.5"])
    written = (out / "finetune.json").read_text()
    assert json.loads(written)["train_paragraphs"] + json.loads(written)["heldout_paragraphs"] == 4
    assert not any(str(i) in written for i in (GUILD, CHANNEL, AUTHOR))


async def test_resume_continues_from_the_last_step_as_an_unbroken_run_would(tmp_path: Path) -> None:
    model_dir, corpus = write_tiny_gpt2(tmp_path / "tiny"), write_corpus(tmp_path)
    unbroken = finetune(model_dir, corpus, tmp_path / "unbroken", "--max-steps", "8")
    finetune(model_dir, corpus, tmp_path / "broken", "--max-steps", "4")

    resumed = finetune(model_dir, corpus, tmp_path / "broken", "--max-steps", "8", "--resume")

    assert [h["step"] for h in resumed["history"]] == [0, 2, 4, 6, 8]
    assert train_losses(resumed) == pytest.approx(train_losses(unbroken), rel=1e-4)


def test_bad_input_is_one_clear_line_and_exit_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--model", "x", "--data", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")])
    assert stopped.value.code == 2
    assert "no such file" in capsys.readouterr().err


def test_lora_layers_adapts_only_the_top_blocks(tmp_path: Path) -> None:
    from models.finetune.adapters import LoraSettings, make_trainable

    model = load_hf_model(str(write_tiny_gpt2(tmp_path / "tiny")), CPU).model
    tuned = make_trainable(model, "lora", LoraSettings(top_layers=1))
    trained = [name for name, p in tuned.named_parameters() if p.requires_grad]
    assert trained and all(".h.1." in name for name in trained)


@pytest.mark.embedded
def test_the_embedded_gguf_model_exports_to_a_folder_that_loads_with_the_same_outputs(tmp_path: Path) -> None:
    from models.finetune.adapters import LoraSettings, make_trainable
    from models.finetune.export import export_folder

    base = load_hf_model("smollm2", CPU, dtype=torch.float32)
    ids = torch.tensor([base.encode_prompt(Prompt("a lighthouse keeper"), 16)])
    expected = base.model(input_ids=ids).logits[0, -1]
    export_folder(make_trainable(base.model, "lora", LoraSettings()), base.tokenizer, tmp_path / "out", {})

    loaded = load_hf_model(str(tmp_path / "out"), CPU, dtype=torch.float32)
    assert loaded.is_chat and loaded.encode_prompt(Prompt("a lighthouse keeper"), 16) == ids[0].tolist()
    assert torch.allclose(loaded.model(input_ids=ids).logits[0, -1], expected, atol=1e-4)


def test_early_stopping_ends_a_diverging_run_and_keeps_the_best_weights(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # A learning rate of 50 wrecks the weights at the first step, so held-out loss only worsens.
    report = finetune(write_tiny_gpt2(tmp_path / "tiny"), write_corpus(tmp_path), out, "--full", "--lr", "50",
                      "--max-steps", "20", "--eval-every", "1", "--patience", "2")
    assert report["stopped"] == "early stopping" and report["steps"] == 2
    assert report["best_step"] == 0
    assert report["heldout_perplexity_after"] == report["heldout_perplexity_before"]
