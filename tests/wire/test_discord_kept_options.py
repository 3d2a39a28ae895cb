"""Over the wire: a story keeps the model, strategy and style it was started with (/write's
options) for Continue, /continue and Regenerate, says so under each paragraph, and keeps a
member's own /continue option from then on (issue "Stories that read as stories")."""

from __future__ import annotations

from typing import Any

import pytest

from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from testing.buttons import button_ids
from testing.fakeopenai import FakeOpenAI
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig, paragraph_of
from tests.remote_helpers import REMOTE, at

# The channel's own model is the rig's tiny GPT-2; nothing in them a remote server cannot honour,
# and no seed, so that a paragraph written again differs in its footer at least.
SETTINGS = {**DISCORD_TEST_SETTINGS, "seed": None, "no_repeat_ngram_size": 0, "dry_multiplier": 0.0}
NAMED = "Marta climbed the stairs with Tomas. At the top Marta lit the lamp for Tomas."
KEPT = "(kept from the story's start)"


def footer(message: Any) -> str:
    return message.content.rsplit("\n", 1)[-1]


def asked(monkeypatch: pytest.MonkeyPatch, bot: Any) -> list[Any]:
    """Every request the service hands the engine, from now on."""
    requests: list[Any] = []
    submit = bot.service.engine.submit

    def recording(request: Any) -> Any:
        requests.append(request)
        return submit(request)

    monkeypatch.setattr(bot.service.engine, "submit", recording)
    return requests


async def test_a_story_started_with_model_and_style_continues_and_regenerates_with_both(
        rig: DiscordRig, monkeypatch: pytest.MonkeyPatch) -> None:
    general = rig.seed.general.id
    async with FakeOpenAI(text=NAMED) as server, \
            rig.running(settings=SETTINGS, remote=(at(REMOTE, server.url),)) as bot:
        requests = asked(monkeypatch, bot)
        first = await rig.final(await rig.slash(general, rig.seed.user.id, "write",
                                                {"topic": "a lighthouse keeper", "model": "fake", "style": "noir"}))
        story = await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
        await rig.fake.wait_until(lambda: button_ids(first) == [CONTINUE_ID, REGENERATE_ID])
        await rig.click(general, rig.seed.user.id, first.id, CONTINUE_ID)
        second = await rig.final_in(first.id)
        await rig.fake.wait_until(lambda: button_ids(second) == [CONTINUE_ID, REGENERATE_ID])
        before = second.content
        await rig.click(first.id, rig.seed.user.id, second.id, REGENERATE_ID)
        await rig.fake.wait_until(lambda: second.content != before
                                  and button_ids(second) == [CONTINUE_ID, REGENERATE_ID])
        turns = await bot.service.storage.turns(story.id)
        stored = await bot.service.storage.get_story(story.id)
    completions = server.completions()
    assert [r.body["model"] for r in completions] == ["fake-model"] * 3  # never the channel's model
    assert all("noir" in r.body["messages"][0]["content"] for r in completions)  # the system prompt's voice
    assert [(r.params.model, r.prompt.style) for r in requests] == [("fake", "noir")] * 3
    assert requests[1].prompt.cast == requests[2].prompt.cast == ("Marta", "Tomas")
    assert footer(first).startswith("-# fake · sample · style noir · seed ")
    assert footer(second).startswith(f"-# fake {KEPT} · sample · style noir {KEPT} · seed ")
    assert [t.text for t in turns] == [NAMED, NAMED] and paragraph_of(second.content) == NAMED
    assert stored is not None and stored.kept == {"model": "fake", "style": "noir"}
    assert stored.cast == ("Marta", "Tomas")


async def test_continue_with_its_own_model_changes_what_the_story_keeps(
        rig: DiscordRig, monkeypatch: pytest.MonkeyPatch) -> None:
    general = rig.seed.general.id
    async with FakeOpenAI() as server, rig.running(settings=SETTINGS, remote=(at(REMOTE, server.url),)) as bot:
        requests = asked(monkeypatch, bot)
        first = await rig.final(await rig.slash(general, rig.seed.user.id, "write",
                                                {"topic": "a harbour", "model": "fake", "strategy": "greedy"}))
        await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
        switched = await rig.final(await rig.slash(first.id, rig.seed.user.id, "continue",
                                                   {"model": rig.model_name}))
        await rig.fake.wait_until(lambda: button_ids(switched) == [CONTINUE_ID, REGENERATE_ID])
        await rig.click(first.id, rig.seed.user.id, switched.id, CONTINUE_ID)
        third = await rig.final_in(first.id, after=switched.id)
    assert [r.params.model for r in requests] == ["fake", rig.model_name, rig.model_name]
    assert [r.params.strategy for r in requests] == ["greedy"] * 3  # the strategy stays kept
    assert len(server.completions()) == 1
    assert footer(switched).startswith(f"-# {rig.model_name} · greedy {KEPT}")
    assert footer(third).startswith(f"-# {rig.model_name} (kept from paragraph 2) · greedy {KEPT}")


async def test_a_setting_changed_in_the_thread_says_the_story_keeps_its_own(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running(settings=SETTINGS) as bot:
        first = await rig.final(await rig.slash(general, rig.seed.user.id, "write",
                                                {"topic": "a harbour", "style": "noir"}))
        await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
        change = await rig.slash(first.id, rig.seed.admin.id, "settings",
                                 {"name": "style", "value": "gothic", "scope": "thread"}, subcommand="set")
        answer = await change.wait_until_original(lambda m: bool(m.content))
        await rig.fake.wait_until(lambda: button_ids(first) == [CONTINUE_ID, REGENERATE_ID])
        await rig.click(general, rig.seed.user.id, first.id, CONTINUE_ID)
        second = await rig.final_in(first.id, after=answer.id)
        assert rig.scripted is not None
        styles = [p.style for p in rig.scripted.prompts]
    assert answer.ephemeral and answer.content == (
        "style is now gothic for this thread. This thread's story keeps its own style (noir, chosen with "
        "paragraph 1) over settings: to change it, give /continue a style.")
    assert styles == ["noir", "noir"] and f"style noir {KEPT}" in footer(second), second.content
