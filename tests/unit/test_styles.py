"""The `style` setting: layered like every setting, cleaned like a topic, and carried into the
prompt of each backend that can take it (a chat model's system prompt, a plain LM's header)."""

from __future__ import annotations

import pytest
import torch

from bot.formatting import settings_table
from bot.messages import UserError
from bot.service import Place, Service
from models.base import Prompt
from models.hf import HFStepModel, load_hf_model
from models.markov import MarkovBackend
from models.prompts import SYSTEM_PROMPT
from models.registry import takes_style
from tests.conftest import GUILD
from tests.tiny_models import write_tiny_gpt2
from tests.unit.test_markov import chain

CHANNEL, THREAD, USER = 10, 11, 100
IN_THREAD = Place(channel_id=CHANNEL, user_id=USER, guild_id=GUILD, thread_id=THREAD)
IN_CHANNEL = Place(channel_id=CHANNEL, user_id=USER, guild_id=GUILD)
GOTHIC = "gothic horror, second person"


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> HFStepModel:
    folder = write_tiny_gpt2(tmp_path_factory.mktemp("tiny-chat"), chat=True)
    return load_hf_model(str(folder), torch.device("cpu"))


def test_a_chat_model_reads_the_style_in_its_system_prompt(chat_model: HFStepModel) -> None:
    styled = chat_model.decode_text(chat_model.encode_prompt(Prompt("a lamp", style=GOTHIC), 20))
    plain = chat_model.decode_text(chat_model.encode_prompt(Prompt("a lamp"), 20))
    system, _, request = styled.partition("Write a paragraph about")
    assert SYSTEM_PROMPT in system and GOTHIC in system and GOTHIC not in request
    assert GOTHIC not in plain and "a lamp" in request
    story = Prompt("a lamp", history=["It was dark."], direction="dawn", style=GOTHIC)
    assert GOTHIC in chat_model.decode_text(chat_model.encode_prompt(story, 20)).partition("Here is a story")[0]


def test_a_plain_lm_reads_the_style_in_its_header_above_the_topic(tiny_gpt2_model: HFStepModel) -> None:
    styled = tiny_gpt2_model.decode_text(tiny_gpt2_model.encode_prompt(Prompt("a lamp", style=GOTHIC), 20))
    assert styled == "Gothic horror, second person.\nA lamp.\n\n"
    story = Prompt("a lamp", history=["It was dark."], style="en français")
    assert tiny_gpt2_model.decode_text(tiny_gpt2_model.encode_prompt(story, 20)).startswith("En français.\nA lamp.")


def test_the_word_level_models_take_no_style_and_say_so() -> None:
    markov = MarkovBackend(chain())
    assert markov.encode_prompt(Prompt("cats", style=GOTHIC), 20) == markov.encode_prompt(Prompt("cats"), 20)
    assert [takes_style(m) for m in ("lstm", "markov", "markov-2", "smollm2", "gpt2")] == [
        False, False, False, True, True]


async def test_the_style_layers_server_channel_thread(service: Service) -> None:
    await service.set_setting(IN_THREAD, "style", "a bedtime story", "server")
    await service.set_setting(IN_THREAD, "style", GOTHIC, "thread")
    here, there = await service.effective_settings(IN_THREAD), await service.effective_settings(IN_CHANNEL)
    assert here.preferences.style == GOTHIC and here.sources["style"] == "thread"
    assert there.preferences.style == "a bedtime story" and there.sources["style"] == "server"
    assert (await service.set_setting(IN_THREAD, "style", "none", "thread")).startswith("style is now (none)")
    assert await service.style_here(IN_THREAD) is None  # cleared here: an empty thread value wins


async def test_a_style_is_cleaned_like_a_topic_with_its_mentions_taken_out(service: Service) -> None:
    await service.set_setting(IN_CHANNEL, "style", "  noir,\u200b for <@123> and @everyone\n<#9>  ")
    assert await service.style_here(IN_CHANNEL) == "noir, for and everyone"
    with pytest.raises(UserError, match="the style is too long \\(201 characters; at most 200\\)"):
        await service.set_setting(IN_CHANNEL, "style", "x" * 201)


async def test_every_request_here_carries_the_style_and_a_story_keeps_its_own(service: Service) -> None:
    await service.set_setting(IN_CHANNEL, "style", GOTHIC)
    plain = await service.write(IN_CHANNEL, "a harbour")
    await plain.result()
    first = await service.write(IN_CHANNEL, "a lighthouse keeper", {"style": "en français"})
    await first.result()
    following = await service.continue_story(IN_CHANNEL, "the storm")  # the story started in French
    await following.result()
    compared = await service.compare(IN_CHANNEL, "a storm", models=(service.default_model,))
    assert plain.handle.request.prompt.style == GOTHIC
    assert first.handle.request.prompt.style == following.handle.request.prompt.style == "en français"
    assert compared[0].handle.request.prompt.style == GOTHIC
    with pytest.raises(UserError, match="style is too long"):
        await service.check_can_start(IN_CHANNEL, {"style": "y" * 300}, "a topic")


async def test_settings_show_says_the_style_does_not_apply_to_the_lstm(service: Service) -> None:
    await service.set_setting(IN_CHANNEL, "style", GOTHIC)
    assert f"style = {GOTHIC}  (channel;" in settings_table(await service.effective_settings(IN_CHANNEL))
    await service.set_setting(IN_CHANNEL, "model", "lstm")
    table = settings_table(await service.effective_settings(IN_CHANNEL))
    assert f"style = {GOTHIC}: does not apply to lstm  (channel;" in table
