"""Over the wire: fake Discord -> the real bot -> a remote model on the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import discord

from bot.discord.stream import STOPPED, StreamTiming
from bot.discord.views import CONTINUE_ID, REGENERATE_ID, STOP_ID
from bot.limits import WRITING_MARKER
from testing.buttons import button_ids
from testing.fakeopenai import DEFAULT_TEXT, FakeOpenAI, Fault
from tests.conftest import DISCORD_TEST_SETTINGS, DISCORD_TEST_TIMING, DiscordRig, paragraph_of
from tests.remote_helpers import REMOTE, at

# The tests' short settings, on the remote model, with nothing a server cannot honour.
REMOTE_SETTINGS = {**DISCORD_TEST_SETTINGS, "model": "fake", "max_new_tokens": 64, "no_repeat_ngram_size": 0,
                   "dry_multiplier": 0.0}


async def test_write_streams_a_remote_paragraph_stores_it_and_continue_goes_on(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with FakeOpenAI(chunk_delay_s=0.01) as server, \
            rig.running(settings=REMOTE_SETTINGS, remote=(at(REMOTE, server.url),)) as bot:
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a lighthouse keeper"})
        final = await rig.final(ix)
        story = await rig.until(lambda: bot.service.storage.story_for_thread(final.id))
        await rig.fake.wait_until(lambda: button_ids(final) == [CONTINUE_ID, REGENERATE_ID])
        await rig.click(general, rig.seed.user.id, final.id, CONTINUE_ID)
        after = await rig.final_in(final.id)
        turns = await bot.service.storage.turns(story.id)
    assert paragraph_of(final.content) == DEFAULT_TEXT and any(old.endswith(WRITING_MARKER) for old in final.history)
    assert final.content.rsplit("\n", 1)[-1].startswith("-# fake · sample")
    assert [t.text for t in turns] == [DEFAULT_TEXT, DEFAULT_TEXT] and paragraph_of(after.content) == DEFAULT_TEXT
    first, second = server.completions()
    assert first.body["model"] == "fake-model" and first.body["seed"] == 7
    assert second.body["messages"][2] == {"role": "assistant", "content": DEFAULT_TEXT}, "Continue did not send the story"


async def test_unsupported_settings_are_marked_in_show_and_said_once_by_write(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    settings = {**REMOTE_SETTINGS, "no_repeat_ngram_size": 2}  # no server has an n-gram ban
    async with FakeOpenAI() as server, \
            rig.running(settings=settings, remote=(at(REMOTE, server.url, dialect="ollama"),)):
        show = await rig.slash(general, rig.seed.user.id, "settings", subcommand="show")
        shown = (await show.wait_until_original(lambda m: bool(m.content))).content
        first = await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": "a storm"}))
        second = await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": "a calm"}))
    marked = [line.split(" = ")[0] for line in shown.splitlines() if line.endswith("[not supported by fake]")]
    assert marked == ["top_k", "no_repeat_ngram_size", "repetition_penalty", "min_new_tokens"]
    note = "fake does not support top_k, no_repeat_ngram_size, repetition_penalty, min_new_tokens here"
    assert note in first.content and "does not support" not in second.content
    assert "top_k" not in server.completions()[0].body


async def test_a_stream_cut_midway_keeps_its_text_says_so_and_is_not_stored(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with FakeOpenAI() as server, rig.running(settings=REMOTE_SETTINGS, remote=(at(REMOTE, server.url),)) as bot:
        server.faults.append(Fault("cut", after=5))
        final = await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": "a storm"}))
        await rig.settle()
        stories = await bot.service.storage.latest_story(general)
    assert final.content.startswith(" ".join(DEFAULT_TEXT.split()[:5]))
    assert "stopped in the middle of this paragraph" in final.content and "not saved" in final.content
    assert stories is None, "a half-written paragraph was stored as a story"


async def test_stop_closes_the_stream_the_server_sees_it_and_the_text_is_kept(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with FakeOpenAI(chunk_delay_s=0.05) as server, \
            rig.running(settings=REMOTE_SETTINGS, remote=(at(REMOTE, server.url),)):
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a long road"})
        writing = await ix.wait_until_original(lambda m: m.content.endswith(WRITING_MARKER))
        await rig.click(general, rig.seed.user.id, writing.id, STOP_ID)
        final = await rig.final(ix)
        await asyncio.sleep(0.1)
    (sent,) = server.completions()
    assert STOPPED in final.content and sent.disconnected and not sent.finished


async def test_a_down_server_gets_a_friendly_sentence_and_stats_shows_it(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with FakeOpenAI() as server, rig.running(settings=REMOTE_SETTINGS, remote=(at(REMOTE, server.url),)):
        server.down = True
        final = await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": "a storm"}))
        stats = await rig.slash(general, rig.seed.user.id, "stats")
        shown = (await stats.wait_until_original(lambda m: bool(m.content))).content
    assert "the server that runs fake is not answering right now" in final.content
    assert f"remote fake at 127.0.0.1:{server.port}: DOWN" in shown or "being probed" in shown


async def test_a_deleted_message_closes_the_stream_and_nothing_is_stored(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with FakeOpenAI(chunk_delay_s=0.05) as server, \
            rig.running(settings=REMOTE_SETTINGS, remote=(at(REMOTE, server.url),)) as bot:
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a long road"})
        writing = await ix.wait_until_original(lambda m: m.content.endswith(WRITING_MARKER))
        writing.deleted = True  # a moderator deletes it while it is being written
        (sent,) = await rig.fake.wait_until(lambda: [c for c in server.completions() if c.disconnected] or None)
        await rig.settle()
        stored = await bot.service.storage.latest_story(general)
    assert not sent.finished and stored is None


async def test_an_old_token_goes_on_through_the_channel_and_stops_only_if_that_is_refused_too(
        rig: DiscordRig) -> None:
    # Past the token's life the stream edits through the channel, so the member still gets the
    # paragraph; only when the channel refuses as well (the bot lost access) does it stop, and
    # then the HTTP stream is closed so the server frees the request's slot.
    shift = [timedelta(0)]
    timing = StreamTiming(**DISCORD_TEST_TIMING, utcnow=lambda: discord.utils.utcnow() + shift[0])
    general = rig.seed.general.id
    async with FakeOpenAI(chunk_delay_s=0.02) as server, \
            rig.running(settings=REMOTE_SETTINGS, remote=(at(REMOTE, server.url),), timing=timing):
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a long night"})
        await ix.wait_until_original(lambda m: m.content.endswith(WRITING_MARKER))
        shift[0] = timedelta(minutes=16)
        finished = await rig.final(ix)
        server.chunk_delay_s = 0.05
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "another night"})
        await ix.wait_until_original(lambda m: m.content.endswith(WRITING_MARKER))
        rig.fake.inject("PATCH", f"/channels/{general}/messages/", status=403, times=1000)
        (cut,) = await rig.fake.wait_until(lambda: [c for c in server.completions() if c.disconnected] or None)
        await rig.settle()
    first, _ = server.completions()
    assert paragraph_of(finished.content) == DEFAULT_TEXT and first.finished and not first.disconnected
    assert rig.fake.calls_to("PATCH", f"/channels/{general}/messages/{finished.id}")
    assert not cut.finished
