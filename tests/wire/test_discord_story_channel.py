"""Story channels over the wire: each member's message directs the next paragraph, one paragraph
at a time per channel; bots are not heard; the setting needs the Message Content intent."""

from __future__ import annotations

from typing import Any

from bot.messages import NEEDS_MESSAGE_CONTENT
from tests.conftest import DiscordRig, is_final, paragraph_of


async def make_story_channel(rig: DiscordRig, channel_id: int) -> Any:
    ix = await rig.slash(channel_id, rig.seed.admin.id, "settings", {"name": "story_channel", "value": "on"},
                         subcommand="set")
    return await ix.wait_until_original(lambda m: bool(m.content))


def paragraphs_in(rig: DiscordRig, channel_id: int) -> list[Any]:
    return [m for m in rig.fake.messages_in(channel_id) if m.author_id == rig.fake.bot.id and is_final(m)
            and not m.ephemeral]


async def test_three_members_in_turn_each_get_one_paragraph_that_follows_the_story(rig: DiscordRig) -> None:
    stories = rig.seed.second.id
    third = rig.fake.add_user("third")
    rig.fake.add_member(rig.seed.guild.id, third.id)
    lines = [(rig.seed.user.id, "a lighthouse keeper finds a bottle"), (rig.seed.admin.id, "the bottle holds a map"),
             (third.id, "the map leads under the sea")]
    async with rig.running() as bot:
        done = await make_story_channel(rig, stories)
        answers = []
        for author, text in lines:
            posted = await rig.fake.user_message(stories, author, text)
            answers.append(await rig.final_in(stories, after=posted.id))
        story = await bot.service.storage.latest_story(stories)
        turns = await bot.service.storage.turns(story.id)
        assert rig.scripted is not None
        prompts = rig.scripted.prompts
    assert done.content == "story_channel is now True for this channel."
    assert story.topic == lines[0][1] and [t.kind for t in turns] == ["write", "continue", "continue"]
    assert [t.direction for t in turns[1:]] == [lines[1][1], lines[2][1]]
    assert [t.author_id for t in turns] == [author for author, _ in lines]
    assert [t.text for t in turns] == [paragraph_of(m.content) for m in answers]
    # Each paragraph is written from the story so far and its member's line.
    assert [(p.history, p.direction) for p in prompts] == [
        ([], None), ([turns[0].text], lines[1][1]), ([turns[0].text, turns[1].text], lines[2][1])]
    sent = [c for c in rig.fake.calls_to("POST", f"/channels/{stories}/messages")]
    assert len(sent) == 3 and len(paragraphs_in(rig, stories)) == 3


async def test_two_messages_posted_while_it_writes_give_one_paragraph(rig: DiscordRig) -> None:
    stories = rig.seed.second.id
    async with rig.running(step_delay_s=0.1) as bot:
        await make_story_channel(rig, stories)
        first = await rig.fake.user_message(stories, rig.seed.user.id, "a storm at sea")
        await rig.fake.wait_for_message(stories, lambda m: m.author_id == rig.fake.bot.id, after=first.id)
        await rig.fake.user_message(stories, rig.seed.admin.id, "the mast breaks")
        last = await rig.fake.user_message(stories, rig.seed.user.id, "a gull lands on deck")
        await rig.final_in(stories, after=last.id)
        await rig.settle()  # the channel's writer has nothing left to answer
        story = await bot.service.storage.latest_story(stories)
        turns = await bot.service.storage.turns(story.id)
    assert len(paragraphs_in(rig, stories)) == 2
    assert [(t.kind, t.direction) for t in turns] == [("write", None),
                                                      ("continue", "the mast breaks; a gull lands on deck")]


async def test_without_the_message_content_intent_the_setting_is_refused(rig: DiscordRig) -> None:
    async with rig.running(message_content=False) as bot:
        refused = await make_story_channel(rig, rig.seed.second.id)
        stored = await bot.service.storage.get_settings("channel", rig.seed.second.id)
    assert refused.ephemeral and refused.content == f"Sorry: {NEEDS_MESSAGE_CONTENT}"
    assert stored == {}


async def test_a_bots_message_gets_no_answer(rig: DiscordRig) -> None:
    stories = rig.seed.second.id
    other_bot = rig.fake.add_user("otherbot", bot=True)
    rig.fake.add_member(rig.seed.guild.id, other_bot.id)
    async with rig.running() as bot:
        await make_story_channel(rig, stories)
        await rig.fake.user_message(stories, other_bot.id, "a dragon")
        member = await rig.fake.user_message(stories, rig.seed.user.id, "a castle")
        answer = await rig.final_in(stories, after=member.id)
        await rig.settle()
        story = await bot.service.storage.latest_story(stories)
    # Messages arrive in order: had the bot's been taken, it would have started the story.
    assert story.topic == "a castle" and paragraphs_in(rig, stories) == [answer]


async def test_a_channel_without_the_setting_ignores_members(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        await rig.fake.user_message(rig.seed.second.id, rig.seed.user.id, "a castle")
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "a harbour"})
        await rig.final(ix)
        await rig.settle()
        stories = await bot.service.storage.stories_here(rig.seed.second.id)
    assert stories == [] and paragraphs_in(rig, rig.seed.second.id) == []


async def test_a_member_over_the_cooldown_gets_a_notice_not_a_paragraph(rig: DiscordRig) -> None:
    stories = rig.seed.second.id
    async with rig.running(cooldown_s=600) as bot:
        await make_story_channel(rig, stories)
        first = await rig.fake.user_message(stories, rig.seed.user.id, "a storm at sea")
        paragraph = await rig.final_in(stories, after=first.id)
        again = await rig.fake.user_message(stories, rig.seed.user.id, "the mast breaks")
        notice = await rig.fake.wait_for_message(stories, lambda m: m.content.startswith("Sorry"), after=again.id)
        await rig.settle()
        story = await bot.service.storage.latest_story(stories)
        turns = await bot.service.storage.turns(story.id)
    assert notice.author_id == rig.fake.bot.id and "slow down a little" in notice.content
    assert len(turns) == 1 and paragraphs_in(rig, stories) == [paragraph, notice]
