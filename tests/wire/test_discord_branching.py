"""Branching over the wire: "Continue from here" and "Regenerate" (message context menus) on any
paragraph, who may do what, /story list, and all of it after a restart."""

from __future__ import annotations

from typing import Any

from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from cogs.branch import CONTINUE_FROM_HERE, REGENERATE
from testing.buttons import button_ids, raw_button_ids
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig, paragraph_of

MESSAGE_MENU = 3  # application command type of a message context menu
EPHEMERAL = 1 << 6


async def story_of_four(rig: DiscordRig, bot: Any) -> tuple[Any, list[Any]]:
    """/write in #general and /continue three times in its thread: the story and its 4 messages."""
    first = await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write",
                                            {"topic": "a lighthouse keeper"}))
    story = await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
    messages = [first]
    for _ in range(3):
        messages.append(await rig.final(await rig.slash(first.id, rig.seed.user.id, "continue")))
    await rig.settle()
    return story, messages


async def branch_from(rig: DiscordRig, bot: Any, channel_id: int, message: Any, user_id: int) -> tuple[Any, Any]:
    """'Continue from here' on `message`; returns the private answer and the branch's thread."""
    before = {t.id for t in rig.fake.threads_of(rig.seed.general.id)}
    ix = await rig.menu(channel_id, user_id, CONTINUE_FROM_HERE, message.id)
    answer = await ix.wait_until_original(lambda m: not m.loading and "Branched" in m.content)
    thread = await rig.fake.wait_until(lambda: next(
        (t for t in rig.fake.threads_of(rig.seed.general.id) if t.id not in before), None))
    await rig.final_in(thread.id)
    await rig.settle()
    return answer, thread


async def test_both_message_menus_are_synced_as_message_commands(rig: DiscordRig) -> None:
    async with rig.running():
        synced = rig.fake.world.commands[rig.seed.guild.id]
    menus = {c["name"] for c in synced if c["type"] == MESSAGE_MENU}
    assert menus == {CONTINUE_FROM_HERE, REGENERATE}


async def test_continue_from_paragraph_2_of_4_opens_a_thread_with_paragraphs_1_and_2(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        story, messages = await story_of_four(rig, bot)
        original = await bot.service.storage.turns(story.id)
        answer, thread = await branch_from(rig, bot, messages[0].id, messages[1], rig.seed.admin.id)
        branch = await bot.service.storage.story_for_thread(thread.id)
        branch_turns = await bot.service.storage.turns(branch.id)
        after = await bot.service.storage.turns(story.id)
    assert answer.ephemeral and f"<#{thread.id}>" in answer.content
    assert thread.parent_id == rig.seed.general.id and branch.parent_id == story.id
    assert branch.author_id == rig.seed.admin.id and branch.topic == story.topic
    # The branch's history is paragraphs 1-2, then its own next paragraph, shown in the thread.
    assert [t.text for t in branch_turns[:2]] == [t.text for t in original[:2]]
    assert len(branch_turns) == 3 and branch_turns[2].kind == "continue"
    assert not {t.id for t in branch_turns} & {t.id for t in original}  # copies, not shared rows
    shown = [m for m in rig.fake.messages_in(thread.id) if m.author_id == rig.fake.bot.id]
    assert "paragraph 2" in shown[0].content and f"/{messages[1].id}" in shown[0].content
    assert paragraph_of(shown[-1].content) == branch_turns[2].text
    assert raw_button_ids(shown[-1]) == [f"{CONTINUE_ID}:{branch.id}", f"{REGENERATE_ID}:{branch.id}"]
    # The original story is untouched: 4 paragraphs, and its newest keeps its buttons.
    assert after == original and len(after) == 4
    assert button_ids(rig.fake.world.messages[messages[3].id]) == [CONTINUE_ID, REGENERATE_ID]


async def test_the_branch_goes_on_by_itself_and_the_original_too(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        story, messages = await story_of_four(rig, bot)
        _, thread = await branch_from(rig, bot, messages[0].id, messages[1], rig.seed.user.id)
        await rig.final(await rig.slash(thread.id, rig.seed.user.id, "continue"))
        await rig.final(await rig.slash(messages[0].id, rig.seed.user.id, "continue"))
        branch = await bot.service.storage.story_for_thread(thread.id)
        branch_turns = await bot.service.storage.turns(branch.id)
        original = await bot.service.storage.turns(story.id)
    assert len(branch_turns) == 4 and len(original) == 5
    assert [t.text for t in branch_turns[:2]] == [t.text for t in original[:2]]


async def test_regenerate_from_the_menu_rewrites_the_newest_paragraph_in_its_message(rig: DiscordRig) -> None:
    async with rig.running(settings={**DISCORD_TEST_SETTINGS, "seed": None}) as bot:
        story, messages = await story_of_four(rig, bot)
        newest = messages[3]
        before = newest.content
        ix = await rig.menu(messages[0].id, rig.seed.user.id, REGENERATE, newest.id)
        await rig.fake.wait_until(lambda: newest.content != before
                                  and button_ids(newest) == [CONTINUE_ID, REGENERATE_ID])
        turns = await bot.service.storage.turns(story.id)
    assert ix.original.ephemeral
    assert len(turns) == 4 and turns[3].text == paragraph_of(newest.content)
    public = [m for m in rig.fake.messages_in(messages[0].id) if not m.ephemeral]
    assert before in newest.history and len(public) == 3  # rewritten in place, no new message


async def test_regenerate_on_an_older_paragraph_offers_a_branch_that_works(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        story, messages = await story_of_four(rig, bot)
        ix = await rig.menu(messages[0].id, rig.seed.user.id, REGENERATE, messages[2].id)
        offer = await ix.wait_until_original(lambda m: bool(m.content))
        (branch_id,) = raw_button_ids(offer)
        before = {t.id for t in rig.fake.threads_of(rig.seed.general.id)}
        click = await rig.fake.click(rig.seed.guild.id, messages[0].id, rig.seed.user.id, offer.id, branch_id)
        await click.wait_until_original(lambda m: "Branched" in m.content)
        (thread,) = [t for t in rig.fake.threads_of(rig.seed.general.id) if t.id not in before]
        await rig.final_in(thread.id)
        await rig.settle()
        branch = await bot.service.storage.story_for_thread(thread.id)
        branch_turns = await bot.service.storage.turns(branch.id)
        original = await bot.service.storage.turns(story.id)
    assert offer.ephemeral and offer.content.startswith("Sorry: that is not the story's newest paragraph")
    assert [t.text for t in branch_turns[:3]] == [t.text for t in original[:3]] and len(original) == 4


async def test_regenerate_by_another_member_is_refused_but_they_may_branch(rig: DiscordRig) -> None:
    stranger = rig.fake.add_user("stranger")
    rig.fake.add_member(rig.seed.guild.id, stranger.id)
    async with rig.running() as bot:
        story, messages = await story_of_four(rig, bot)
        newest_before = messages[3].content
        refused = await rig.menu(messages[0].id, stranger.id, REGENERATE, messages[3].id)
        answer = await refused.wait_until_original(lambda m: bool(m.content))
        _, thread = await branch_from(rig, bot, messages[0].id, messages[3], stranger.id)
        turns = await bot.service.storage.turns(story.id)
    assert answer.ephemeral and "only the member who started this story" in answer.content
    assert messages[3].content == newest_before and len(turns) == 4
    assert thread.parent_id == rig.seed.general.id


async def test_a_moderator_may_regenerate_another_members_paragraph(rig: DiscordRig) -> None:
    async with rig.running(settings={**DISCORD_TEST_SETTINGS, "seed": None}) as bot:
        story, messages = await story_of_four(rig, bot)
        before = messages[3].content
        await rig.menu(messages[0].id, rig.seed.admin.id, REGENERATE, messages[3].id)
        await rig.fake.wait_until(lambda: messages[3].content != before
                                  and button_ids(messages[3]) == [CONTINUE_ID, REGENERATE_ID])
        turns = await bot.service.storage.turns(story.id)
    assert turns[3].text == paragraph_of(messages[3].content)


async def test_the_menus_on_a_message_that_is_no_paragraph_say_so(rig: DiscordRig) -> None:
    async with rig.running():
        line = await rig.fake.user_message(rig.seed.general.id, rig.seed.user.id, "just chatting")
        ix = await rig.menu(rig.seed.general.id, rig.seed.user.id, CONTINUE_FROM_HERE, line.id)
        answer = await ix.wait_until_original(lambda m: bool(m.content))
    assert answer.ephemeral and "not one of my story paragraphs" in answer.content
    assert rig.fake.threads_of(rig.seed.general.id) == []


async def test_branching_and_its_permissions_hold_after_a_restart(rig: DiscordRig) -> None:
    stranger = rig.fake.add_user("stranger")
    rig.fake.add_member(rig.seed.guild.id, stranger.id)
    async with rig.running() as bot:
        story, messages = await story_of_four(rig, bot)
    async with rig.running() as restarted:  # a new StoryBot on the same database
        refused = await rig.menu(messages[0].id, stranger.id, REGENERATE, messages[3].id)
        answer = await refused.wait_until_original(lambda m: bool(m.content))
        _, thread = await branch_from(rig, restarted, messages[0].id, messages[1], stranger.id)
        branch = await restarted.service.storage.story_for_thread(thread.id)
        branch_turns = await restarted.service.storage.turns(branch.id)
        original = await restarted.service.storage.turns(story.id)
    assert "only the member who started this story" in answer.content
    assert [t.text for t in branch_turns[:2]] == [t.text for t in original[:2]] and len(original) == 4


async def test_story_list_shows_the_servers_stories_newest_first_a_page_at_a_time(rig: DiscordRig) -> None:
    topics = [f"story number {i}" for i in range(10)]
    async with rig.running():
        for topic in topics:
            await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": topic}))
        await rig.settle()
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "story", {}, subcommand="list")
        page1 = await ix.wait_until_original(lambda m: bool(m.content))
        first_page = page1.content
        next_id = raw_button_ids(page1)[1]
        await rig.fake.click(rig.seed.guild.id, rig.seed.general.id, rig.seed.user.id, page1.id, next_id)
        page2 = await rig.fake.wait_until(lambda: page1 if page1.content != first_page else None)
    assert page1.ephemeral and "page 1 of 2, 10 in all" in first_page
    shown = [t for t in reversed(topics) if t in first_page]
    assert shown == list(reversed(topics))[:8]  # newest first, 8 to a page
    assert "1 paragraph(s)" in first_page and f"https://discord.com/channels/{rig.seed.guild.id}/" in first_page
    assert "page 2 of 2" in page2.content and topics[1] in page2.content and topics[0] in page2.content


async def test_the_lists_next_button_still_works_after_a_restart(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        for number in range(9):
            await bot.service.storage.start_story(guild_id=rig.seed.guild.id, channel_id=rig.seed.general.id,
                                                  author_id=rig.seed.user.id, topic=f"story {number}", model="m",
                                                  kind="write", text="Once.", settings={})
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "story", {}, subcommand="list")
        listing = await ix.wait_until_original(lambda m: bool(m.content))
    first_page = listing.content
    async with rig.running():  # a new StoryBot on the same database
        await rig.fake.click(rig.seed.guild.id, rig.seed.general.id, rig.seed.user.id, listing.id,
                             raw_button_ids(listing)[1])
        await rig.fake.wait_until(lambda: listing if listing.content != first_page else None)
    assert "page 1 of 2" in first_page and "page 2 of 2" in listing.content and "story 0" in listing.content
    assert raw_button_ids(listing) == ["stories:page:1", "stories:page:3"]
    assert [b["disabled"] for row in listing.components for b in row["components"]] == [False, True]
