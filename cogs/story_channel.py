"""Story channels on Discord: members' messages in a channel with story_channel on direct the
story (bot/story_channels.py decides what is written; this cog only listens and shows)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import discord
from discord.ext import commands

from bot.discord.checks import place_of_message
from bot.discord.errors import NO_MENTIONS
from bot.messages import AccessDenied
from bot.service import Generation
from bot.story_channels import MemberLine, StoryChannels

if TYPE_CHECKING:
    from bot.discord.client import StoryBot

log = logging.getLogger(__name__)

NOTICE_S: Final = 15.0  # a refusal in a story channel goes away after this long: it is not the story
MEMBER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)


class StoryChannel(commands.Cog):
    """Listens in story channels and streams each paragraph into the channel."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.service = bot.service
        self.channels = StoryChannels(bot.service)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A member's message in a story channel is the direction of its next paragraph. Bots
        (this one too) and webhooks are not members; without the Message Content intent the text
        is empty and nothing happens."""
        if message.author.bot or message.webhook_id is not None or message.guild is None:
            return
        text = message.content.strip()
        if message.type not in MEMBER_MESSAGES or not text:
            return
        place = place_of_message(message)
        if not await self.channels.is_story_channel(place):
            return
        roles = [role.id for role in getattr(message.author, "roles", ())]
        try:
            await self.service.access.check(place, roles)
        except AccessDenied:
            return  # a member the access rules refuse directs nothing (nobody is told, as in threads)
        channel = message.channel

        async def tell(words: str) -> None:
            try:
                await channel.send(words, allowed_mentions=NO_MENTIONS, delete_after=NOTICE_S)
            except discord.HTTPException as error:
                log.info("could not answer in story channel %s: %s", channel.id, error)

        async def show(generation: Generation) -> None:
            await self._show(channel, generation)

        await self.channels.take(MemberLine(place, text, tell), show)

    async def _show(self, channel: discord.abc.Messageable, generation: Generation) -> None:
        """Stream the paragraph into the channel; a new story lives where it was written."""
        place = generation.place
        message_ids = await self.bot.stream(generation, self.bot.channel_target(channel, place.conversation_id))
        story = generation.story
        if message_ids and generation.kind == "write" and story is not None and generation.turn is not None:
            await self.service.attach(story.id, thread_id=place.thread_id, message_id=message_ids[0])


async def setup(bot: StoryBot) -> None:
    await bot.add_cog(StoryChannel(bot))
