"""Long stories move forward: a model that copies its context cannot loop, and the continuation
prompt shows the story as a story, cut by whole paragraphs."""

from __future__ import annotations

from pathlib import Path

from bot.discord.views import CONTINUE_ID
from bot.engine.requests import GenerationRequest
from bot.engine.worker import Engine
from models.base import Prompt
from models.hf import HFStepModel
from models.params import GenerationParams
from models.prompts import OMITTED, STORY_REQUEST, chat_messages, window
from models.text.tokenizer import Vocab
from tests.conftest import DiscordRig
from tests.copying_model import CopyingModel, word_grams

# Only DRY stands between the copying model and a copy: no n-gram ban, no repetition penalty.
COPYING = GenerationParams(model="copier", strategy="greedy", max_new_tokens=12, min_new_tokens=12,
                           no_repeat_ngram_size=0, repetition_penalty=1.0, stop_at_paragraph=False)
STORY = "the keeper climbed stairs lamp storm harbour boats ropes night sea light"


async def continue_story(params: GenerationParams, history: list[str], topic: str = "a keeper") -> str:
    model = CopyingModel()
    async with Engine(lambda name: model, "copier") as engine:  # type: ignore[arg-type, return-value]
        event = await engine.submit(GenerationRequest(Prompt(topic, history), params)).result()
    assert event.kind == "done"
    return event.text


async def test_a_copying_model_copies_the_history_when_dry_is_off() -> None:
    text = await continue_story(COPYING.replace(dry_multiplier=0.0), [STORY])
    assert text == STORY  # the worst case is real: the model writes the last paragraph again


async def test_a_copying_model_cannot_copy_eight_words_of_the_history_when_dry_is_on() -> None:
    history = [STORY, "gull wind cold door glass tide shore sand boat hand paper ink"]
    text = await continue_story(COPYING, history)  # dry on by default
    assert len(text.split()) == 12
    assert not word_grams(text) & set().union(*(word_grams(p) for p in history)), text


async def test_a_new_storys_first_paragraph_is_written_without_dry() -> None:
    """DRY is for continuations: the first paragraph may echo its topic (the copying model copies it)."""
    assert await continue_story(COPYING, [], topic=STORY) == STORY
    beam = COPYING.replace(strategy="beam", num_beams=2)
    assert await continue_story(beam, [], topic=STORY) == STORY
    assert not word_grams(await continue_story(beam, [STORY])) & word_grams(STORY)


async def test_variants_and_sampled_rows_honour_dry_too() -> None:
    params = COPYING.replace(strategy="sample", temperature=0.3, seed=3, variants=2)
    text = await continue_story(params, [STORY])
    assert not word_grams(text) & word_grams(STORY), text


def test_the_window_keeps_the_opening_and_the_latest_paragraphs() -> None:
    story = [f"p{i} " + "w " * 9 for i in range(10)]  # ten paragraphs of ten words

    def fits(kept: list[str]) -> bool:
        return sum(len(p.split()) for p in kept) <= 45

    kept, gap = window(story, fits)
    assert kept == [story[0], *story[-3:]] and gap
    assert window(story[:4], fits) == (story[:4], False)
    assert window(story, lambda kept: len(kept) == 1) == ([story[-1]], False)


def test_a_chat_continuation_is_one_request_holding_the_story() -> None:
    messages = chat_messages("a keeper", ["First.", "Second.", "Third."], "the storm comes")
    assert [m["role"] for m in messages] == ["system", "user"]
    request = messages[1]["content"]
    assert "First.\n\nSecond.\n\nThird." in request and request.endswith("In this paragraph: the storm comes.")
    assert STORY_REQUEST.split("{story}")[1].strip().split(".")[0] in request  # the instruction to move on
    gapped = chat_messages("a keeper", ["First.", "Third."], None, gap=True)[1]["content"]
    assert f"First.\n\n{OMITTED}\n\nThird." in gapped


def test_hf_prompts_drop_middle_paragraphs_whole(tiny_gpt2_model: HFStepModel) -> None:
    model = tiny_gpt2_model  # a plain LM: header + story
    story = [f"Paragraph {i} tells of the lamp and the stairs." for i in range(60)]
    ids = model.encode_prompt(Prompt("the lighthouse keeper", story), model.context_window - 200)
    text = model.decode_text(ids)
    assert len(ids) <= 200 and text.startswith("The lighthouse keeper.\n\nParagraph 0 tells")
    assert text.rstrip().endswith("Paragraph 59 tells of the lamp and the stairs.")
    kept = [i for i in range(60) if f"Paragraph {i} " in text]
    assert kept == [0, *range(60 - len(kept) + 1, 60)] and len(kept) < 60  # no paragraph cut in two


def test_lstm_prompts_drop_middle_paragraphs_whole() -> None:
    vocab = Vocab.build(["Paragraph 1 2 3 4 5 6 7 8 9 tells of the lamp ."] * 3, 100, 1)
    story = [f"Paragraph {i} tells of the lamp ." for i in range(1, 10)]
    ids = vocab.prompt_ids(Prompt("the lamp", story), 30)
    text = vocab.decode(ids)
    assert text.endswith("Paragraph 9 tells of the lamp.") and "Paragraph 1 tells" in text
    assert "Paragraph 5 tells" not in text and len(ids) <= 30


async def test_ten_continue_clicks_on_a_copying_model_store_ten_different_paragraphs(tmp_path: Path) -> None:
    """Over the wire: /write, then Continue clicked ten times, with the channel's defaults."""
    from testing.fakediscord.fixtures import started_fake_discord

    settings = {"max_new_tokens": 12, "min_new_tokens": 12, "stop_at_paragraph": False, "strategy": "greedy"}
    async with started_fake_discord() as fake:
        rig = DiscordRig(fake, CopyingModel(), "copier", tmp_path / "bot.db")
        async with rig.running(settings=settings) as bot:
            first = await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write",
                                                    {"topic": STORY}))
            story = await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
            channel, latest, after = rig.seed.general.id, first, 0
            for _ in range(10):  # each time on the newest paragraph, the only one with buttons
                await rig.click(channel, rig.seed.user.id, latest.id, CONTINUE_ID)
                latest = await rig.final_in(first.id, after=after)
                channel, after = first.id, latest.id
                await rig.settle()
            turns = await bot.service.storage.turns(story.id)
    texts = [t.text for t in turns]
    assert len(texts) == 11 and [t.kind for t in turns][1:] == ["continue"] * 10
    assert len(set(texts[1:])) == 10, texts
    for index, text in enumerate(texts[1:], start=1):  # no paragraph copies 8 words of an earlier one
        assert not word_grams(text) & set().union(*(word_grams(t) for t in texts[:index])), (index, text)


async def test_without_dry_each_continuation_is_the_same_paragraph() -> None:
    """The over-the-wire test above can fail: with DRY off the copying model loops at once."""
    params = COPYING.replace(dry_multiplier=0.0)
    history = [STORY]
    for _ in range(3):
        history.append(await continue_story(params, history))
    assert len(set(history)) == 1
