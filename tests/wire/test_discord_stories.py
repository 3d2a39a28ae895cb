"""Stories over the wire: the buttons (also after a restart), /continue, members' lines, /forget, export."""

from __future__ import annotations

from typing import Any

from bot.discord.stream import STOPPED
from bot.discord.views import CONTINUE_ID, REGENERATE_ID, STOP_ID
from bot.limits import WRITING_MARKER
from testing.buttons import button_ids, raw_button_ids
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig, paragraph_of

EPHEMERAL_REPLY = 4  # interaction callback: a message (ours are ephemeral answers)
DEFERRED_UPDATE = 6  # interaction callback: a click acknowledged without a new message



async def start_story(rig: DiscordRig, bot: Any, topic: str = "a lighthouse keeper") -> tuple[Any, Any]:
    """/write in #general; returns the first message (which the thread starts from) and the story."""
    first = await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": topic}))
    story = await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
    return first, story


async def test_continue_button_writes_the_next_paragraph_into_the_thread(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        first, story = await start_story(rig, bot)
        click = await rig.click(rig.seed.general.id, rig.seed.admin.id, first.id, CONTINUE_ID)
        second = await rig.final_in(first.id)
        await rig.fake.wait_until(lambda: first.components == [])
        turns = await bot.service.storage.turns(story.id)
    assert rig.fake.interaction_responses(click.id)[0].json == {"type": DEFERRED_UPDATE}
    assert button_ids(second) == [CONTINUE_ID, REGENERATE_ID]  # only the newest paragraph has buttons
    assert [t.kind for t in turns] == ["write", "continue"] and turns[1].text == paragraph_of(second.content)


async def test_continue_button_still_works_after_a_restart(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        first, story = await start_story(rig, bot)
    assert raw_button_ids(first) == [f"{CONTINUE_ID}:{story.id}", f"{REGENERATE_ID}:{story.id}"]
    async with rig.running() as restarted:  # a new StoryBot on the same database
        await rig.click(rig.seed.general.id, rig.seed.user.id, first.id, CONTINUE_ID)
        second = await rig.final_in(first.id)
        turns = await restarted.service.storage.turns(story.id)
    assert [t.kind for t in turns] == ["write", "continue"] and paragraph_of(second.content) == turns[1].text


async def test_a_double_click_on_continue_writes_one_paragraph(rig: DiscordRig) -> None:
    async with rig.running(step_delay_s=0.02) as bot:
        first, story = await start_story(rig, bot)
        await rig.click(rig.seed.general.id, rig.seed.user.id, first.id, CONTINUE_ID)
        again = await rig.click(rig.seed.general.id, rig.seed.admin.id, first.id, CONTINUE_ID)
        (answer,) = await again.wait_for_followups()
        await rig.final_in(first.id)
        turns = await bot.service.storage.turns(story.id)
    assert answer.ephemeral and answer.content == "Sorry: that paragraph is already being worked on: one moment"
    assert [t.kind for t in turns] == ["write", "continue"] and len(rig.fake.messages_in(first.id)) == 1


async def test_regenerate_rewrites_the_paragraph_in_its_own_message(rig: DiscordRig) -> None:
    async with rig.running(settings={**DISCORD_TEST_SETTINGS, "seed": None}) as bot:
        first, story = await start_story(rig, bot)
        before = first.content
        click = await rig.click(rig.seed.general.id, rig.seed.user.id, first.id, REGENERATE_ID)
        await rig.fake.wait_until(lambda: first.content != before
                                  and button_ids(first) == [CONTINUE_ID, REGENERATE_ID])
        turns = await bot.service.storage.turns(story.id)
    assert rig.fake.interaction_responses(click.id)[0].json == {"type": DEFERRED_UPDATE}
    assert [t.text for t in turns] == [paragraph_of(first.content)] and before in first.history
    assert len(rig.fake.messages_in(rig.seed.general.id)) == 1


async def test_regenerate_on_an_older_paragraph_is_refused(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        first, _ = await start_story(rig, bot)
        # Its buttons should go when the next paragraph comes; here Discord refuses, so they stay.
        rig.fake.inject("PATCH", rf"^/channels/{rig.seed.general.id}/messages/{first.id}$", status=403)
        await rig.click(rig.seed.general.id, rig.seed.user.id, first.id, CONTINUE_ID)
        await rig.final_in(first.id)
        await rig.settle()  # the Continue click still holds the story until its handler ends
        old = await rig.click(rig.seed.general.id, rig.seed.user.id, first.id, REGENERATE_ID)
        (answer,) = await old.wait_for_followups()
    assert answer.ephemeral and answer.content.startswith("Sorry: only the newest paragraph")


async def test_stop_keeps_the_paragraph_with_its_buttons_and_continue_goes_on_from_it(rig: DiscordRig) -> None:
    slow = {**DISCORD_TEST_SETTINGS, "max_new_tokens": 200}
    general = rig.seed.general.id
    async with rig.running(step_delay_s=0.05, settings=slow) as bot:
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a long road"})
        writing = await ix.wait_until_original(lambda m: m.content.endswith(WRITING_MARKER))
        assert button_ids(writing) == [STOP_ID]
        await rig.click(general, rig.seed.user.id, writing.id, STOP_ID)
        final = await rig.final(ix)
        story = await rig.until(lambda: bot.service.storage.story_for_thread(final.id))
        stored = await bot.service.storage.turns(story.id)
        await rig.fake.wait_until(lambda: button_ids(final) == [CONTINUE_ID, REGENERATE_ID])
        await rig.click(general, rig.seed.user.id, final.id, CONTINUE_ID)
        after = await rig.final_in(final.id)
        turns = await bot.service.storage.turns(story.id)
    kept, footer = paragraph_of(final.content), final.content.rsplit("\n", 1)[-1]
    assert kept.endswith(STOPPED) and footer.startswith("-# ") and footer.endswith("· stopped")
    (turn,) = stored
    assert turn.facts["stopped"] is True and kept.startswith(turn.text) and turn.text.strip()
    assert [t.kind for t in turns] == ["write", "continue"] and paragraph_of(after.content) == turns[1].text


async def test_stop_by_another_member_is_refused(rig: DiscordRig) -> None:
    stranger = rig.fake.add_user("stranger")
    rig.fake.add_member(rig.seed.guild.id, stranger.id)
    slow = {**DISCORD_TEST_SETTINGS, "max_new_tokens": 200}
    async with rig.running(step_delay_s=0.05, settings=slow):
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "a long road"})
        writing = await ix.wait_until_original(lambda m: m.content.endswith(WRITING_MARKER))
        refused = await rig.click(rig.seed.general.id, stranger.id, writing.id, STOP_ID)
        await refused.wait_until_original(lambda m: bool(m.content))
        await rig.click(rig.seed.general.id, rig.seed.admin.id, writing.id, STOP_ID)  # a moderator may
        final = await rig.final(ix)
    assert refused.original.ephemeral and "only the member who asked" in refused.original.content
    assert STOPPED in final.content


async def test_continue_command_writes_in_the_thread_with_a_direction(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        first, story = await start_story(rig, bot)
        ix = await rig.slash(first.id, rig.seed.admin.id, "continue", {"direction": "the tide turns"})
        second = await rig.final(ix)
        turns = await bot.service.storage.turns(story.id)
    assert second.channel_id == first.id and button_ids(second) == [CONTINUE_ID, REGENERATE_ID]
    assert [(t.kind, t.direction) for t in turns] == [("write", None), ("continue", "the tide turns")]


async def test_continue_command_outside_a_thread_is_refused(rig: DiscordRig) -> None:
    async with rig.running():
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "continue")
        answer = await ix.wait_until_original(lambda m: bool(m.content))
    assert ix.response_type == EPHEMERAL_REPLY and answer.ephemeral
    assert answer.content == "Sorry: use this inside a story's thread (or click Continue under a paragraph)"


async def test_members_lines_in_a_story_thread_join_the_story(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        first, story = await start_story(rig, bot)
        await rig.fake.user_message(first.id, rig.seed.admin.id, "Then a gull landed on the rail.")
        await rig.fake.user_message(rig.seed.general.id, rig.seed.admin.id, "not part of any story")

        async def user_turns() -> list[Any]:
            return [t for t in await bot.service.storage.turns(story.id) if t.kind == "user"]

        (turn,) = await rig.until(user_turns)
    assert (turn.text, turn.author_id) == ("Then a gull landed on the rail.", rig.seed.admin.id)


async def test_without_the_content_intent_members_lines_are_left_out_quietly(rig: DiscordRig) -> None:
    async with rig.running(message_content=False) as bot:
        first, story = await start_story(rig, bot)
        await rig.fake.user_message(first.id, rig.seed.admin.id, "Then a gull landed on the rail.")
        ix = await rig.slash(first.id, rig.seed.user.id, "continue")
        await rig.final(ix)  # by then the member's message has long been handled
        turns = await bot.service.storage.turns(story.id)
    assert [t.kind for t in turns] == ["write", "continue"]


async def test_forget_needs_manage_messages_and_then_deletes_the_history(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running() as bot:
        first, _ = await start_story(rig, bot)
        refused = await rig.slash(general, rig.seed.user.id, "forget")
        await refused.wait_until_original(lambda m: bool(m.content))
        done = await rig.slash(general, rig.seed.admin.id, "forget")
        await done.wait_until_original(lambda m: bool(m.content))
        after = await rig.slash(first.id, rig.seed.user.id, "continue")
        nothing = await rig.private_answer(after)
        left = await bot.service.storage.latest_story(general)
    assert refused.original.ephemeral
    assert refused.original.content == "Sorry: forgetting history needs the Manage Messages permission"
    assert done.original.ephemeral and done.original.content.startswith("Forgotten: 1 paragraph(s)")
    assert left is None and nothing.content == "Sorry: there is no story here yet: start one with /write"


async def test_story_export_attaches_the_whole_story_as_markdown(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        first, story = await start_story(rig, bot, topic="Owls at night")
        await rig.fake.user_message(first.id, rig.seed.admin.id, "An owl called twice.")

        async def has_user_turn() -> bool:
            return len(await bot.service.storage.turns(story.id)) == 2

        await rig.until(has_user_turn)
        ix = await rig.slash(first.id, rig.seed.user.id, "story", subcommand="export")
        reply = await ix.wait_until_original(lambda m: bool(m.attachments))
    (attachment,) = reply.attachments
    text = attachment.data.decode("utf-8")
    assert reply.ephemeral and attachment.filename == f"story-{story.id}-owls-at-night.md"
    assert text.startswith("# Owls at night\n") and paragraph_of(first.content) in text and "> An owl called twice." in text
