"""The continuation prompt: the story as the model's own answer, what varies last, a stable prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.base import Prompt
from models.hf import HFStepModel, load_hf_model
from models.prompts import chat_messages, continuation_text, direction_note
from tests.tiny_models import write_tiny_gpt2

STORY = ["Mara lit the lamp at dusk.", "A bottle lay on the rocks below.", "Inside was a map."]


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> HFStepModel:
    folder = write_tiny_gpt2(tmp_path_factory.mktemp("tiny-chat"), chat=True)
    return load_hf_model(str(folder), torch.device("cpu"), torch.float32, decode="off")


def test_a_continuation_shows_the_story_as_the_models_own_answer_and_asks_last() -> None:
    messages = chat_messages("a keeper", STORY, "the storm comes", cast=("Mara",))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == chat_messages("a keeper", [], None)[1]["content"]  # the /write request
    assert messages[2]["content"] == "\n\n".join(STORY)
    assert messages[3]["content"].startswith("Write the next paragraph")
    assert "the storm comes" in messages[3]["content"] and "Mara" in messages[3]["content"]


def test_consecutive_turns_share_the_story_so_far_as_one_token_prefix(chat_model: HFStepModel) -> None:
    turn = chat_model.encode_prompt(Prompt("a keeper", STORY[:2], "a storm", cast=("Mara",)), 32)
    after = chat_model.encode_prompt(Prompt("a keeper", STORY, None, cast=("Mara", "Tom")), 32)
    shared = next(i for i, (a, b) in enumerate(zip(turn, after, strict=False)) if a != b)
    through_story = chat_model.tokenizer.decode(after[:shared])
    assert through_story.rstrip().endswith(STORY[1])  # all of the story so far is shared


def test_a_plain_lm_reads_the_story_then_the_direction_last() -> None:
    header, story = continuation_text("a keeper", STORY, "the storm comes")
    assert header == "A keeper.\n\n"
    assert story.startswith(STORY[0]) and story.endswith(direction_note("the storm comes"))
    assert continuation_text("a keeper", STORY, None)[1] == "\n\n".join(STORY) + "\n\n"


def test_a_plain_lm_keeps_header_and_direction_when_the_story_is_cut(tmp_path: Path) -> None:
    folder = write_tiny_gpt2(tmp_path / "plain")
    model = load_hf_model(str(folder), torch.device("cpu"), torch.float32, decode="off")
    ids = model.encode_prompt(Prompt("a keeper", ["word " * 2000], "the storm comes"), model.context_window - 64)
    text = model.decode_text(ids)
    assert text.startswith("A keeper.") and text.endswith(direction_note("the storm comes"))


def test_a_cut_story_marks_the_paragraphs_left_out_after_its_opening() -> None:
    from models.prompts import OMITTED

    gapped = chat_messages("a keeper", ["First.", "Third."], None, gap=True)[2]["content"]
    assert gapped == f"First.\n\n{OMITTED}\n\nThird."
