"""/write over the wire: a real StoryBot, cogs, service, storage and tiny GPT-2 against the fake Discord."""

from __future__ import annotations

import time
from datetime import timedelta

import discord

from bot.discord.stream import WAITING, StreamTiming
from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from bot.limits import DEFER_DEADLINE_S, WRITING_MARKER
from bot.service import Place
from testing.buttons import button_ids
from tests.conftest import DISCORD_TEST_SETTINGS, DISCORD_TEST_TIMING, DiscordRig, paragraph_of

SLOW = {**DISCORD_TEST_SETTINGS, "max_new_tokens": 24}  # long enough to see several edits



async def test_write_defers_at_once_then_streams_edits_into_a_final_paragraph(rig: DiscordRig) -> None:
    async with rig.running(step_delay_s=0.03, settings=SLOW):
        asked = time.monotonic()
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "a lighthouse keeper"})
        final = await rig.final(ix)
    (callback,) = rig.fake.interaction_responses(ix.id)
    assert callback.json == {"type": 5} and callback.time - asked < DEFER_DEADLINE_S
    assert final.content.strip() and not final.content.endswith(WRITING_MARKER)
    assert any(old.endswith(WRITING_MARKER) for old in final.history), "no streamed edit"
    assert button_ids(final) == [CONTINUE_ID, REGENERATE_ID]
    assert [m.id for m in rig.fake.messages_in(rig.seed.general.id)] == [final.id]


async def test_a_new_story_gets_a_thread_named_after_its_topic(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running() as bot:
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "bread rising at dawn"})
        final = await rig.final(ix)
        (thread,) = await rig.fake.wait_until(lambda: rig.fake.threads_of(general))
        place = Place(channel_id=general, user_id=rig.seed.user.id, thread_id=thread.id)
        story = await rig.until(lambda: bot.service.storage.story_for_thread(thread.id))
        turns = await bot.service.storage.turns(story.id)
    assert (thread.id, thread.name) == (final.id, "bread rising at dawn")
    assert story.message_id == final.id and story.topic == "bread rising at dawn"
    assert [t.text for t in turns] == [paragraph_of(final.content)] and place.conversation_id == thread.id


async def test_with_story_threads_off_the_story_stays_in_the_channel(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running(settings={**DISCORD_TEST_SETTINGS, "story_threads": False}) as bot:
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a quiet harbour"})
        final = await rig.final(ix)
        await rig.settle()  # the /write handler attaches the message to the story after the last edit
        story = await rig.until(lambda: bot.service.storage.latest_story(general))
        buttons = button_ids(final)
        follow = await rig.click(general, rig.seed.user.id, final.id, CONTINUE_ID)
        after = await rig.final_in(general, after=final.id)
        turns = await bot.service.storage.turns(story.id)
    assert rig.fake.threads_of(general) == [] and story.thread_id is None and story.message_id == final.id
    assert buttons == [CONTINUE_ID, REGENERATE_ID] and follow is not None
    assert [t.text for t in turns] == [paragraph_of(final.content), paragraph_of(after.content)]  # Continue goes on in the channel
    assert after.channel_id == general and button_ids(after) == [CONTINUE_ID, REGENERATE_ID]


async def test_generated_mentions_ping_nobody(rig: DiscordRig) -> None:
    role, user = rig.seed.mod.id, rig.seed.admin.id
    prefix = f"Hey @everyone and @here, <@&{role}> and <@{user}> and <@!{user}>: "
    async with rig.running(prefix=prefix):
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "an announcement"})
        final = await rig.final(ix)
    assert "@\u200beveryone" in final.content and "<@&\u200b" in final.content
    for text in [final.content, *final.history]:
        assert "@everyone" not in text and "@here" not in text and f"<@{user}>" not in text
    payloads = rig.payloads()
    assert payloads and all(rig.message_of(c)["allowed_mentions"] == {"parse": []} for c in payloads)


async def test_a_429_and_a_500_on_an_edit_still_end_with_one_complete_message(rig: DiscordRig) -> None:
    async with rig.running(step_delay_s=0.02, settings=SLOW):
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "rain on the harbour"})
        await ix.wait_until_original(lambda m: not m.loading)  # the first render landed
        # discord.py waits 1 s after a first 5xx but 3 s after a second failure: 500 first.
        rig.fake.inject("PATCH", r"^/webhooks/.*/messages/", status=500)
        rig.fake.inject("PATCH", r"^/webhooks/.*/messages/", status=429, retry_after=0.05)
        final = await rig.final(ix)
    edits = rig.fake.calls_to("PATCH", "/webhooks/")
    assert [(c.status, c.injected) for c in edits if c.injected] == [(500, True), (429, True)]
    assert all(c.status == 200 for c in edits if not c.injected)
    shown = [*final.history, final.content]
    assert shown.count(final.content) == 1 and shown[-1] == final.content
    assert [m.id for m in rig.fake.messages_in(rig.seed.general.id)] == [final.id]


async def test_a_queued_write_shows_and_updates_its_position(rig: DiscordRig) -> None:
    seed = rig.seed
    third = rig.fake.add_user("third")
    rig.fake.add_member(seed.guild.id, third.id)
    async with rig.running(max_batch=1, step_delay_s=0.03):
        first = await rig.slash(seed.general.id, seed.admin.id, "write", {"topic": "the first"})
        await first.wait_until_original(lambda m: not m.loading)
        second = await rig.slash(seed.second.id, seed.user.id, "write", {"topic": "the second"})
        await second.wait_until_original(lambda m: m.content.startswith("⏳"))
        last = await rig.slash(seed.second.id, third.id, "write", {"topic": "the third"})
        await last.wait_until_original(lambda m: m.content == WAITING.format(position=2))
        stats = await rig.slash(seed.second.id, third.id, "stats")
        stats_reply = await stats.wait_until_original(lambda m: bool(m.content))
        finals = [await rig.final(ix) for ix in (first, second, last)]
    assert "your request: waiting, number 2 in line" in stats_reply.content and stats_reply.ephemeral
    assert WAITING.format(position=1) in finals[1].history
    waited = [text for text in finals[2].history if text.startswith("⏳")]
    assert waited[0] == WAITING.format(position=2) and waited[-1] == WAITING.format(position=1)
    assert all(f.content.strip() and button_ids(f) == [CONTINUE_ID, REGENERATE_ID] for f in finals)


async def test_edits_go_through_the_channel_once_the_interaction_token_is_old(rig: DiscordRig) -> None:
    shift = [timedelta(0)]
    timing = StreamTiming(**DISCORD_TEST_TIMING, utcnow=lambda: discord.utils.utcnow() + shift[0])
    general = rig.seed.general.id
    async with rig.running(step_delay_s=0.03, settings=SLOW, timing=timing):
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a very long night"})
        await ix.wait_until_original(lambda m: not m.loading)
        shift[0] = timedelta(minutes=16)
        final = await rig.final(ix)
    late = rig.fake.calls_to("PATCH", f"/channels/{general}/messages/{final.id}")
    assert late and late[-1].json["content"] == final.content and late[-1].status == 200


async def test_a_busy_queue_answers_clearly_instead_of_queueing(rig: DiscordRig) -> None:
    seed = rig.seed
    third = rig.fake.add_user("third")
    rig.fake.add_member(seed.guild.id, third.id)
    async with rig.running(max_batch=1, max_waiting=1, step_delay_s=0.03):
        running = await rig.slash(seed.general.id, seed.admin.id, "write", {"topic": "one"})
        await running.wait_until_original(lambda m: not m.loading and "⏳" not in m.content)
        queued = await rig.slash(seed.second.id, seed.user.id, "write", {"topic": "two"})
        await queued.wait_until_original(lambda m: not m.loading)
        refused = await rig.slash(seed.second.id, third.id, "write", {"topic": "three"})
        answer = await rig.final(refused)
        await rig.final(queued)
    assert answer.content.startswith("Sorry: I'm busy: the queue is full")
    assert answer.components == []


async def test_a_second_write_within_the_cooldown_is_refused(rig: DiscordRig) -> None:
    async with rig.running(cooldown_s=60):
        first = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "owls"})
        await rig.final(first)
        again = await rig.slash(rig.seed.second.id, rig.seed.user.id, "write", {"topic": "more owls"})
        answer = await rig.final(again)
    assert answer.content.startswith("Sorry: slow down a little: try again in")


async def test_write_inside_a_story_thread_continues_that_story(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running() as bot:
        first = await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": "a storm"}))
        await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
        ix = await rig.slash(first.id, rig.seed.admin.id, "write", {"topic": "the boats break loose"})
        second = await rig.final(ix)
        story = await bot.service.storage.story_for_thread(first.id)
        assert story is not None
        turns = await bot.service.storage.turns(story.id)
    assert second.channel_id == first.id and len(rig.fake.threads_of(general)) == 1
    assert [(t.kind, t.direction) for t in turns] == [("write", None), ("continue", "the boats break loose")]


async def test_an_unavailable_model_falls_back_and_says_so(rig: DiscordRig) -> None:
    async with rig.running():  # the rig loads only its tiny model: lstm is offered but fails to load
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write",
                             {"topic": "tea", "model": "lstm", "strategy": "greedy", "length": 12})
        final = await rig.final(ix)
    assert final.content.startswith("*model lstm is not available")


async def test_a_model_the_owner_does_not_offer_is_refused_and_nothing_loads(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write",
                             {"topic": "tea", "model": "/etc", "length": 12})
        final = await rig.final(ix)
        loaded = bot.service.engine.stats().models
    assert final.content.startswith("Sorry: model must be one of smollm2, lstm, markov")
    assert "'/etc'" in final.content and "/etc" not in loaded


async def test_commands_are_synced_to_the_dev_guild_and_refuse_dms(rig: DiscordRig) -> None:
    async with rig.running():
        commands = {c["name"]: c for c in rig.fake.world.commands[rig.seed.guild.id]}
    assert set(commands) == {"write", "compare", "settings", "continue", "forget", "story", "stats", "access",
                             "Continue from here", "Regenerate"}  # the last two: message menus
    assert all(c["contexts"] == [0] and c["dm_permission"] is False for c in commands.values())
    write = {o["name"]: o for o in commands["write"]["options"]}
    assert [c["value"] for c in write["strategy"]["choices"]] == ["greedy", "beam", "top_k", "top_p", "sample"]
    assert (write["length"]["min_value"], write["length"]["max_value"]) == (8, 512)
