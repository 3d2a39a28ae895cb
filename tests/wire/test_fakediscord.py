"""The fake Discord server, exercised by the real discord.py client (no project code)."""

from __future__ import annotations

import asyncio
import io

import discord
import pytest

from testing.fakediscord import FakeDiscord, running_client
from testing.fakediscord import fixtures as fake_fixtures
from testing.fakediscord.fixtures import started_fake_discord
from testing.fakediscord.gateway import IDENTIFY, RESUME
from tests.wire.fake_harness import (
    EVENT_TIMEOUT,
    MORE_BUTTON_ID,
    REWRITE_BUTTON_ID,
    HarnessBot,
    StoryView,
    harness,
)

fake_discord = fake_fixtures.fake_discord


async def test_login_reaches_ready_with_the_seeded_guild(fake_discord: FakeDiscord) -> None:
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await asyncio.wait_for(bot.ready_event.wait(), EVENT_TIMEOUT)
        guild = bot.get_guild(fake_discord.seed.guild.id)
        assert bot.user is not None and bot.user.id == fake_discord.bot.id
        assert guild is not None and {c.name for c in guild.text_channels} == {"general", "stories"}
        # Without the members intent discord.py caches only the bot's own member.
        assert guild.me is not None and guild.member_count == 3
    login = fake_discord.calls_to("GET", "/users/@me")
    assert login and login[0].authorization == f"Bot {fake_discord.token}" and login[0].status == 200
    assert fake_discord.calls_to("GET", "/oauth2/applications/@me")[0].status == 200


async def test_a_wrong_token_fails_login_with_401(fake_discord: FakeDiscord) -> None:
    with pytest.raises(discord.LoginFailure):
        async with running_client(harness(fake_discord), "not-the-token"):
            pass
    assert fake_discord.calls_to("GET", "/users/@me")[0].status == 401


async def test_guild_sync_puts_the_commands_and_gets_ids(fake_discord: FakeDiscord) -> None:
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        synced = await bot.tree.sync(guild=bot.test_guild)
    guild_id = fake_discord.seed.guild.id
    (put,) = fake_discord.calls_to("PUT", f"/guilds/{guild_id}/commands")
    assert put.route == "/applications/{application_id}/guilds/{guild_id}/commands"
    assert [c["name"] for c in put.json] == ["write", "story"]
    assert [c.id for c in synced] == [int(c["id"]) for c in fake_discord.world.commands[guild_id]]


async def test_slash_command_defers_then_sends_and_edits_a_followup(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await bot.tree.sync(guild=bot.test_guild)
        ix = await fake_discord.slash(
            seed.guild.id, seed.general.id, seed.user.id, "write", {"topic": "owls"}
        )
        final = await ix.wait_until_original(lambda m: m.content == "3 sentences about owls.")
    (callback,) = fake_discord.interaction_responses(ix.id)
    assert callback.json == {"type": 5}
    (followup,) = fake_discord.calls_to("POST", f"/webhooks/{fake_discord.world.application_id}/")
    (edit,) = fake_discord.calls_to("PATCH", "/webhooks/")
    assert followup.query.get("wait") == "1"
    assert followup.json["allowed_mentions"] == {"parse": []}
    assert edit.json["allowed_mentions"] == {"parse": []}
    # The first followup after a thinking defer replaces the placeholder: one message, not two.
    assert [m.id for m in fake_discord.messages_in(seed.general.id)] == [final.id]
    assert final.history == ["", "Writing about owls..."] and not final.loading


async def test_slash_options_are_typed_from_the_synced_schema(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await bot.tree.sync(guild=bot.test_guild)
        with pytest.raises(ValueError, match="length must be int"):
            await fake_discord.slash(
                seed.guild.id, seed.general.id, seed.user.id, "write", {"topic": "a", "length": "2"}
            )
        ix = await fake_discord.slash(
            seed.guild.id, seed.general.id, seed.user.id, "write", {"topic": "a", "length": 2}
        )
        await ix.wait_until_original(lambda m: m.content == "2 sentences about a.")
    assert ix.payload["data"]["options"] == [
        {"name": "topic", "type": 3, "value": "a"},
        {"name": "length", "type": 4, "value": 2},
    ]


async def test_channel_message_opens_a_thread_the_client_caches(fake_discord: FakeDiscord) -> None:
    general = fake_discord.seed.general
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        channel = bot.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        starter = await channel.send("Chapter one", view=StoryView(bot.clicks))
        thread = await starter.create_thread(name="Chapter one")
        await thread.send("It was a dark and stormy night.")
        await fake_discord.wait_until(lambda: bot.get_channel(thread.id))
    (fake_thread,) = fake_discord.threads_of(general.id)
    assert fake_thread.id == starter.id and fake_thread.name == "Chapter one"
    assert [m.content for m in fake_discord.messages_in(thread.id)] == ["It was a dark and stormy night."]
    assert (
        fake_discord.messages_in(general.id)[0].components[0]["components"][0]["custom_id"] == MORE_BUTTON_ID
    )


async def test_button_click_reaches_the_persistent_view(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        channel = bot.get_channel(seed.general.id)
        assert isinstance(channel, discord.TextChannel)
        message = await channel.send("Chapter one", view=StoryView(bot.clicks))
        ix = await fake_discord.click(
            seed.guild.id, seed.general.id, seed.user.id, message.id, MORE_BUTTON_ID
        )
        assert await ix.wait_for_response() == 4
    assert bot.clicks == [seed.user.id]
    assert ix.original is not None and ix.original.ephemeral and ix.original.content == "More is coming."


async def test_slash_command_works_inside_a_thread(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await bot.tree.sync(guild=bot.test_guild)
        channel = bot.get_channel(seed.general.id)
        assert isinstance(channel, discord.TextChannel)
        thread = await channel.create_thread(name="side story", type=discord.ChannelType.public_thread)
        ix = await fake_discord.slash(seed.guild.id, thread.id, seed.admin.id, "write", {"topic": "tea"})
        await ix.wait_until_original(lambda m: m.content == "3 sentences about tea.")
    assert [m.content for m in fake_discord.messages_in(thread.id)] == ["3 sentences about tea."]
    assert ix.payload["channel"]["parent_id"] == str(seed.general.id)


async def test_rate_limit_then_server_error_on_the_edit_still_yields_one_final_content(
    fake_discord: FakeDiscord,
) -> None:
    seed = fake_discord.seed
    fake_discord.inject("PATCH", r"^/webhooks/.*/messages/", status=429, retry_after=0.05)
    fake_discord.inject("PATCH", r"^/webhooks/.*/messages/", status=500)
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await bot.tree.sync(guild=bot.test_guild)
        ix = await fake_discord.slash(
            seed.guild.id, seed.general.id, seed.user.id, "write", {"topic": "rain"}
        )
        await ix.wait_until_original(lambda m: m.content == "3 sentences about rain.", timeout=4.5)
    edits = fake_discord.calls_to("PATCH", "/webhooks/")
    assert [(c.status, c.injected) for c in edits] == [(429, True), (500, True), (200, False)]
    assert edits[0].response == {
        "message": "You are being rate limited.",
        "retry_after": 0.05,
        "global": False,
    }
    messages = fake_discord.messages_in(seed.general.id)
    assert [m.content for m in messages] == ["3 sentences about rain."]
    assert messages[0].history == ["", "Writing about rain..."]  # the failed attempts changed nothing


async def test_reconnect_is_resumed_and_events_keep_flowing(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await bot.tree.sync(guild=bot.test_guild)
        session_id = fake_discord.gateway.session.id if fake_discord.gateway.session else None
        await fake_discord.send_reconnect()
        await asyncio.wait_for(bot.resumed_event.wait(), EVENT_TIMEOUT)
        ix = await fake_discord.slash(seed.guild.id, seed.general.id, seed.user.id, "write", {"topic": "fog"})
        await ix.wait_until_original(lambda m: m.content == "3 sentences about fog.")
        assert bot.ws is not None and bot.ws.session_id == session_id
    assert fake_discord.gateway.received_ops().count(IDENTIFY) == 1
    assert RESUME in fake_discord.gateway.received_ops()
    assert fake_discord.gateway.connections[1].path == "/gateway/resume"
    assert "RESUMED" in fake_discord.gateway.sent_events()


async def test_non_resumable_invalid_session_makes_the_client_identify_again(
    fake_discord: FakeDiscord,
) -> None:
    async with running_client(harness(fake_discord), fake_discord.token):
        first = fake_discord.gateway.session
        await fake_discord.send_invalid_session(resumable=False)
        await fake_discord.wait_until(lambda: fake_discord.gateway.received_ops().count(IDENTIFY) == 2)
        await fake_discord.wait_until_ready()
        assert fake_discord.gateway.session is not first


async def test_gateway_closes_4004_when_the_token_stops_matching(fake_discord: FakeDiscord) -> None:
    bot = harness(fake_discord)
    with pytest.raises(discord.ConnectionClosed) as caught:
        async with running_client(bot, fake_discord.token):
            fake_discord.world.token = "rotated-token"
            await fake_discord.send_invalid_session(resumable=False)
            await fake_discord.wait_until(bot.is_closed)
    assert caught.value.code == 4004 == fake_discord.gateway.connections[-1].close_code


async def test_user_message_reaches_on_message(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await fake_discord.user_message(seed.general.id, seed.user.id, "hello bot")
        await fake_discord.wait_until(lambda: "hello bot" in bot.seen)


async def test_uploaded_files_keep_their_name_and_bytes(fake_discord: FakeDiscord) -> None:
    general = fake_discord.seed.general
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        channel = bot.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send(
            "the story", file=discord.File(io.BytesIO(b"Once upon a time."), "story.txt")
        )
    (call,) = fake_discord.calls_to("POST", f"/channels/{general.id}/messages")
    assert call.json["content"] == "the story" and call.files[0].filename == "story.txt"
    (attachment,) = fake_discord.messages_in(general.id)[0].attachments
    assert (attachment.filename, attachment.data) == ("story.txt", b"Once upon a time.")
    assert sent.attachments[0].size == len(b"Once upon a time.")


async def test_unknown_routes_answer_404_json_and_are_recorded(fake_discord: FakeDiscord) -> None:
    general = fake_discord.seed.general
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        channel = bot.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.NotFound):
            await channel.set_permissions(channel.guild.default_role, send_messages=False)
    (call,) = fake_discord.calls_to("PUT", "/permissions/")
    assert call.route == "UNKNOWN" and call.status == 404 and call.response["message"] == "404: Not Found"


async def test_ephemeral_defer_makes_the_first_followup_ephemeral(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await bot.tree.sync(guild=bot.test_guild)
        options = {"topic": "moss", "private": True}
        ix = await fake_discord.slash(seed.guild.id, seed.general.id, seed.user.id, "write", options)
        final = await ix.wait_until_original(lambda m: m.content == "3 sentences about moss.")
    assert fake_discord.interaction_responses(ix.id)[0].json == {"type": 5, "data": {"flags": 64}}
    assert final.ephemeral and ix.followups == [final]


async def test_subcommand_in_a_group_gets_nested_typed_options(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        await bot.tree.sync(guild=bot.test_guild)
        with pytest.raises(ValueError, match="within"):
            await fake_discord.slash(
                seed.guild.id, seed.general.id, seed.user.id, "story", {"number": 12}, "continue", "chapter"
            )
        ix = await fake_discord.slash(
            seed.guild.id,
            seed.general.id,
            seed.user.id,
            "story",
            {"number": 2},
            subcommand="continue",
            group="chapter",
        )
        original = await ix.wait_until_original(lambda m: True)
    assert original.content == "Chapter 2 goes on." and not original.ephemeral
    (group,) = ix.payload["data"]["options"]
    assert (group["type"], group["options"][0]["type"], group["options"][0]["name"]) == (2, 1, "continue")


async def test_deferred_component_update_edits_the_clicked_message(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        channel = bot.get_channel(seed.general.id)
        assert isinstance(channel, discord.TextChannel)
        message = await channel.send("Draft", view=StoryView(bot.clicks))
        ix = await fake_discord.click(
            seed.guild.id, seed.general.id, seed.admin.id, message.id, REWRITE_BUTTON_ID
        )
        edited = await ix.wait_until_original(lambda m: m.content == "Rewritten.")
    assert fake_discord.interaction_responses(ix.id)[0].json == {"type": 6}
    assert edited.id == message.id and edited.components == []


async def test_over_long_content_is_rejected_like_discord(fake_discord: FakeDiscord) -> None:
    general = fake_discord.seed.general
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        channel = bot.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as caught:
            await channel.send("x" * 2001)
    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert fake_discord.messages_in(general.id) == []


async def test_delay_fault_holds_the_answer_then_lets_it_through(fake_discord: FakeDiscord) -> None:
    general = fake_discord.seed.general
    fake_discord.inject("POST", r"/messages$", status=None, delay=0.3)
    async with running_client(harness(fake_discord), fake_discord.token) as bot:
        channel = bot.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        started = asyncio.get_running_loop().time()
        await channel.send("slow")
        assert asyncio.get_running_loop().time() - started >= 0.3
    assert [m.content for m in fake_discord.messages_in(general.id)] == ["slow"]


async def test_without_the_content_intent_others_messages_arrive_blank(fake_discord: FakeDiscord) -> None:
    seed = fake_discord.seed
    async with running_client(HarnessBot(seed.guild.id, message_content=False), fake_discord.token) as bot:
        await fake_discord.user_message(seed.general.id, seed.user.id, "secret words")
        await fake_discord.user_message(seed.general.id, seed.user.id, f"<@{seed.bot.id}> hi")
        await fake_discord.wait_until(lambda: len(bot.seen) == 2)
    assert bot.seen == ["", f"<@{seed.bot.id}> hi"]


def test_rate_faults_are_reproducible_for_a_seed() -> None:
    def draw(seed: int) -> list[int | None]:
        fake = FakeDiscord()
        fake.inject_rate(0.5, statuses=(429, 502), seed=seed)
        return [f.status if (f := fake.faults.take("GET", "/x")) else None for _ in range(20)]

    assert draw(7) == draw(7) and None in draw(7) and {429, 502} & set(draw(7))


async def test_the_fake_points_discord_py_at_itself_and_restores_it() -> None:
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    async with started_fake_discord() as fake:
        assert discord.http.Route.BASE == fake.api_url == f"http://127.0.0.1:{fake.port}/api/v10"
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    assert (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == before
