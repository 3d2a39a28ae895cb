"""The Discord front: the bot class, the cogs it loads, and `run_discord`, which `bot.__main__` calls.

Intents: guilds (channels, threads, interactions), guild messages and message content, so a
member's own lines in a story thread join the story. Message content is privileged: switch on
"Message Content Intent" on the Developer Portal's Bot page. Without it the bot still runs: it
reconnects without the intent, and members' messages simply don't become part of stories.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import Config
from bot.discord.access import check_access
from bot.discord.branching import BranchButton
from bot.discord.checks import BotShuttingDown
from bot.discord.clicks import StoryClicks
from bot.discord.errors import NO_MENTIONS, report_error
from bot.discord.story_list import StoryListButton
from bot.discord.stream import (
    ActiveGenerations,
    ChannelTarget,
    InteractionTarget,
    StoryStream,
    StreamTiming,
)
from bot.discord.views import StoryButton
from bot.limits import SHUTDOWN_SHOW_S
from bot.messages import UserError
from bot.ops.metrics import GatewayState
from bot.ops.request_ids import start_request
from bot.service import Generation, Service
from bot.shutdown import run_until_stopped
from bot.storage import StorageUnavailable

log = logging.getLogger(__name__)

# One feature per file; a cog that fails to load is logged and the others still start.
EXTENSIONS = ("cogs.write", "cogs.compare", "cogs.settings", "cogs.stories", "cogs.stats", "cogs.branch",
              "cogs.access", "cogs.story_channel")
# discord.py runs each command, button click and event handler in a task named like this.
HANDLER_TASKS = ("CommandTree-invoker", "discord-ui-view-dispatch", "discord-ui-dynamic-item", "discord.py: on_")


class StoryTree(app_commands.CommandTree):
    """The command tree; once the bot is shutting down it refuses every command politely."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        # Runs in the command's own task: every log line from here to its last edit carries the id.
        if interaction.type is not discord.InteractionType.autocomplete:
            request_id = start_request()
            log.debug("/%s from user %s in channel %s", getattr(interaction.command, "qualified_name", "?"),
                      interaction.user.id, interaction.channel_id, extra={"request_id": request_id})
        service: Service | None = getattr(self.client, "service", None)
        if service is None or interaction.type is discord.InteractionType.autocomplete:
            return True
        if not service.accepting:
            raise BotShuttingDown()
        try:  # the access rules (bot/access.py), on every command and menu
            await check_access(service, interaction)
        except UserError as error:  # a check must raise a CheckFailure to reach the error path
            raise app_commands.CheckFailure(str(error)) from None
        return True


class StoryBot(commands.Bot):
    """The bot: slash commands only (no prefix commands), with the service passed in."""

    def __init__(self, service: Service, config: Config, *, message_content: bool = True,
                 timing: StreamTiming | None = None, gateway: GatewayState | None = None,
                 **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = message_content
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         allowed_mentions=NO_MENTIONS, tree_cls=StoryTree, **options)
        self.service = service
        service.reads_member_messages = message_content  # story channels need members' text
        self.config = config
        self.timing = timing or StreamTiming()
        self.active = ActiveGenerations()
        self.clicks = StoryClicks(self)  # what the story buttons do
        # What /metrics and /healthz know of the gateway: connected or not, and its latency.
        self.gateway = gateway or GatewayState()
        self.gateway.connected = False
        self.gateway.latency = lambda: self.latency

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("could not load %s; the rest of the bot runs without it", extension)
        # Clicks on any earlier message still work, restarts too.
        self.add_dynamic_items(StoryButton, BranchButton, StoryListButton)
        self.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """Dev guild (instant) when DEV_GUILD_ID is set, else global (may take a while to show)."""
        try:
            if self.config.dev_guild_id:
                guild = discord.Object(self.config.dev_guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
                log.info("synced %d commands to the dev guild %s", len(synced), guild.id)
            else:
                synced = await self.tree.sync()
                log.info("synced %d global commands", len(synced))
        except discord.HTTPException:
            log.exception("command sync failed; Discord keeps the commands it had")

    async def on_ready(self) -> None:
        self.gateway.connected = True
        log.info("logged in as %s (id %s) in %d servers", self.user, getattr(self.user, "id", "?"),
                 len(self.guilds))

    async def on_resumed(self) -> None:
        self.gateway.connected = True

    async def on_disconnect(self) -> None:
        self.gateway.connected = False

    async def on_app_command_error(self, interaction: discord.Interaction,
                                   error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)

    async def shut_down(self, grace_s: float | None = None) -> None:
        """Refuse new commands, let the service end waiting and running paragraphs (each with a
        message), give their Discord messages time to show it, then log out.

        `grace_s`: how long running paragraphs may take to finish (default: SHUTDOWN_GRACE_S).
        """
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        log.info("shutting down: running paragraphs get %s s to finish", grace)
        await self.service.shut_down(grace)
        await self.active.wait_until_empty(SHUTDOWN_SHOW_S)
        await self._wait_for_handlers(SHUTDOWN_SHOW_S)
        await self.close()

    @staticmethod
    async def _wait_for_handlers(timeout: float) -> None:
        """Let commands and clicks under way finish (a story's thread being opened, say)."""
        current = asyncio.current_task()
        busy = [task for task in asyncio.all_tasks() if task.get_name().startswith(HANDLER_TASKS)
                and task is not current and not task.done()]
        if busy:
            await asyncio.wait(busy, timeout=timeout)

    def reply_target(self, interaction: discord.Interaction) -> InteractionTarget:
        """Stream into the interaction's deferred reply (and followups)."""
        return InteractionTarget(interaction, self.timing.utcnow)

    def channel_target(self, channel: discord.abc.Messageable, channel_id: int) -> ChannelTarget:
        return ChannelTarget(channel, channel_id)

    async def stream(self, generation: Generation, target: InteractionTarget | ChannelTarget) -> list[int]:
        """Show a generation as it is written; afterwards only the newest paragraph keeps buttons."""
        message_ids = await StoryStream(generation, target, self.timing, self.active).run()
        if not message_ids or generation.turn is None:
            return message_ids
        try:
            previous = await self.service.record_messages(generation.turn, message_ids)
        except StorageUnavailable as error:  # the paragraph is saved; only its message ids are not
            log.warning("could not record the messages of turn %s: %s", generation.turn.id, error)
            return message_ids
        if previous is not None and not generation.replace_last:
            await self.clear_buttons(*previous)
        return message_ids

    async def clear_buttons(self, channel_id: int, message_id: int) -> None:
        message = self.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.edit(view=None, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as error:
            log.info("could not clear the buttons of message %s: %s", message_id, error)


class ShardedStoryBot(StoryBot, commands.AutoShardedBot):
    """The bot on several gateway shards in one process (discord.py's AutoShardedBot): the shard
    count from Discord, or SHARD_COUNT and SHARD_IDS when several processes share the shards."""

    def __init__(self, service: Service, config: Config, **options: Any) -> None:
        super().__init__(service, config, shard_count=config.shard_count,
                         shard_ids=list(config.shard_ids) if config.shard_ids else None, **options)


async def run_discord(config: Config, service: Service, stop: asyncio.Event | None = None,
                      gateway: GatewayState | None = None) -> None:
    """Log in and run until the bot is closed, or until `stop` is set: then shut down gently.
    The token is only ever handed to discord.py. `gateway` is kept up to date for /healthz."""
    token = config.discord_token
    if not token:
        raise ValueError("run_discord needs a DISCORD_TOKEN")
    message_content = True
    while True:
        bot = ShardedStoryBot(service, config, message_content=message_content, gateway=gateway)
        try:
            async with bot:
                await run_until_stopped(bot.start(token), stop, bot.shut_down)
            return
        except discord.PrivilegedIntentsRequired:
            if not message_content:
                raise
            log.warning("the Message Content intent is not enabled for this bot (Developer Portal, "
                        "Bot page); running without it: members' messages won't join stories")
            message_content = False
        except discord.LoginFailure:
            log.error("Discord refused the bot token: copy it again from the Developer Portal")
            return
