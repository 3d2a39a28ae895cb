"""Access control over the wire: the owner's access file (reloaded without a restart), /access for
Manage Server, ephemeral refusals that say why on every command, menu and button, and the daily
token budget per server with an injected clock (/stats shows today's use)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from bot.discord.stream import STOPPED
from bot.discord.views import CONTINUE_ID, REGENERATE_ID, STOP_ID
from bot.limits import WRITING_MARKER
from bot.messages import ACCESS_ROLE_BLOCKED
from cogs.branch import CONTINUE_FROM_HERE, REGENERATE
from testing.buttons import raw_button_ids
from testing.fakediscord import permissions
from testing.fakediscord.options import BOOLEAN, CHANNEL, INTEGER, NUMBER, ROLE, STRING, SUB_COMMAND, USER
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig

EPHEMERAL = 1 << 6
CHANNEL_MESSAGE = 4
MESSAGE_MENU = 3
# Noon UTC on a fixed day: the budget's day turns at midnight UTC.
NOON = datetime.datetime(2026, 11, 30, 12, tzinfo=datetime.UTC).timestamp()


def some_value(option: dict[str, Any], rig: DiscordRig) -> Any:
    """A valid value for a required option, read off the synced schema."""
    if option.get("choices"):
        return option["choices"][0]["value"]
    return {STRING: "a lighthouse keeper", INTEGER: option.get("min_value", 1), NUMBER: option.get("min_value", 1),
            BOOLEAN: False, USER: rig.seed.user.id, ROLE: rig.seed.mod.id,
            CHANNEL: rig.seed.general.id}[option["type"]]


def every_command(rig: DiscordRig) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(name, subcommand, required options) of every synced slash command, /access excepted."""
    found = []
    for command in rig.fake.world.commands[rig.seed.guild.id]:
        if command["type"] != 1 or command["name"] == "access":
            continue
        options = command.get("options", [])
        subcommands = [o for o in options if o["type"] == SUB_COMMAND] or [None]
        for sub in subcommands:
            schema = sub.get("options", []) if sub else options
            values = {o["name"]: some_value(o, rig) for o in schema if o.get("required")}
            found.append((command["name"], sub["name"] if sub else None, values))
    return found


def refusal_of(rig: DiscordRig, ix: Any) -> dict[str, Any]:
    """The interaction's first callback body (what the bot answered at once)."""
    return rig.fake.interaction_responses(ix.id)[0].json


def muted_member(rig: DiscordRig) -> tuple[int, int]:
    """A member with a "Muted" role: (user id, role id)."""
    role = rig.fake.add_role(rig.seed.guild.id, "Muted", permissions.DEFAULT_EVERYONE)
    user = rig.fake.add_user("muted")
    rig.fake.add_member(rig.seed.guild.id, user.id, [role.id])
    return user.id, role.id


def write_access(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def offers_made_before_the_block(rig: DiscordRig, bot: Any, member: int) -> tuple[Any, Any, Any, Any]:
    """A two-paragraph story, and what `member` got while still allowed: a "branch instead" offer
    under a refused Regenerate, and a two-page /story list. Returns (paragraphs 1 and 2, offer, list)."""
    general = rig.seed.general.id
    first = await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": "a lighthouse"}))
    await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
    await rig.click(general, rig.seed.user.id, first.id, CONTINUE_ID)
    second = await rig.final_in(first.id)
    await rig.settle()
    offer = await (await rig.menu(general, member, REGENERATE, first.id)).wait_until_original(lambda m: bool(m.content))
    for number in range(8):  # more stories, so that the list has a second page
        await bot.service.storage.start_story(guild_id=rig.seed.guild.id, channel_id=general, author_id=member,
                                              topic=f"story {number}", model="m", kind="write", text="Once.",
                                              settings={})
    listing = await (await rig.slash(general, member, "story", {}, "list")).wait_until_original(lambda m: bool(m.content))
    return first, second, offer, listing


async def test_a_blocked_role_is_refused_privately_on_every_command_menu_and_button(rig: DiscordRig,
                                                                                    tmp_path: Path) -> None:
    muted, role = muted_member(rig)
    rules = write_access(tmp_path / "access.toml", "[default]\n")
    general = rig.seed.general.id
    slow = {**DISCORD_TEST_SETTINGS, "max_new_tokens": 60}
    async with rig.running(access_file=rules, step_delay_s=0.02, settings=slow) as bot:
        first, second, offer, listing = await offers_made_before_the_block(rig, bot, muted)
        story = await bot.service.storage.story_for_thread(second.channel_id)
        before = await bot.service.storage.turns(story.id)
        threads = len(rig.fake.threads_of(general))
        write_access(rules, f"[default]\nblocked_roles = [{role}]\n")  # read again without a restart
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a long road"})
        writing = await ix.wait_until_original(lambda m: m.content.endswith(WRITING_MARKER))
        tries = [await rig.slash(general, muted, name, options, sub) for name, sub, options in every_command(rig)]
        tries += [await rig.click(general, muted, writing.id, STOP_ID),
                  await rig.click(second.channel_id, muted, second.id, CONTINUE_ID),
                  await rig.click(second.channel_id, muted, second.id, REGENERATE_ID),
                  await rig.fake.click(rig.seed.guild.id, general, muted, offer.id, raw_button_ids(offer)[0]),
                  await rig.fake.click(rig.seed.guild.id, general, muted, listing.id, raw_button_ids(listing)[1]),
                  await rig.menu(general, muted, CONTINUE_FROM_HERE, first.id),
                  await rig.menu(second.channel_id, muted, CONTINUE_FROM_HERE, second.id),
                  await rig.menu(second.channel_id, muted, REGENERATE, second.id)]
        for attempt in tries:
            await attempt.wait_for_response()
        final = await rig.final(ix)
        await rig.settle()
        after = await bot.service.storage.turns(story.id)
    names = {name for name, _, _ in every_command(rig)}
    assert {"write", "continue", "compare", "settings", "stats", "forget", "story"} <= names
    assert raw_button_ids(offer) == [f"branch:{before[0].id}"] and "page 1 of 2" in listing.content
    for attempt in tries:
        answer = refusal_of(rig, attempt)
        assert answer["type"] == CHANNEL_MESSAGE and answer["data"]["flags"] == EPHEMERAL, answer
        assert answer["data"]["content"] == f"Sorry: {ACCESS_ROLE_BLOCKED}", answer
    assert after == before and STOPPED not in final.content  # nothing written again, Stop did nothing
    assert len(rig.fake.threads_of(general)) == threads + 1  # only the new /write's thread: no branch
    assert "page 1 of 2" in listing.content  # the page did not turn


async def test_the_access_file_is_read_again_when_it_changes_without_a_restart(rig: DiscordRig,
                                                                              tmp_path: Path) -> None:
    rules = write_access(tmp_path / "access.toml", "[default]\n")
    general, user = rig.seed.general.id, rig.seed.user.id
    async with rig.running(access_file=rules):
        allowed = await rig.slash(general, user, "stats")
        await allowed.wait_for_response()
        write_access(rules, f"[servers.{rig.seed.guild.id}]\nblocked_users = [{user}]\n")
        blocked = await rig.slash(general, user, "stats")
        await blocked.wait_for_response()
        write_access(rules, f"[default]\nallowed_channels = [{rig.seed.second.id}]\n")
        elsewhere = await rig.slash(general, user, "stats")
        await elsewhere.wait_for_response()
        there = await rig.slash(rig.seed.second.id, user, "stats")
        await there.wait_for_response()
    assert "```" in refusal_of(rig, allowed)["data"]["content"]
    assert refusal_of(rig, blocked)["data"]["content"] == "Sorry: you are blocked from using the bot on this server"
    assert "only works in some channels" in refusal_of(rig, elsewhere)["data"]["content"]
    assert "```" in refusal_of(rig, there)["data"]["content"]


async def test_a_broken_change_to_the_access_file_keeps_the_rules_in_force(rig: DiscordRig, tmp_path: Path) -> None:
    rules = write_access(tmp_path / "access.toml", f"[default]\nblocked_users = [{rig.seed.user.id}]\n")
    async with rig.running(access_file=rules):
        write_access(rules, "[default]\nblocked_users = [oops\n")
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "stats")
        await ix.wait_for_response()
    assert "you are blocked" in refusal_of(rig, ix)["data"]["content"]


async def test_server_managers_block_and_clear_with_access_and_others_may_not(rig: DiscordRig) -> None:
    general, admin, user = rig.seed.general.id, rig.seed.admin.id, rig.seed.user.id
    async with rig.running():
        attempt = await rig.slash(general, user, "access", {"user": admin}, "block")
        await attempt.wait_for_response()
        done = await rig.slash(general, admin, "access", {"user": user}, "block")
        await done.wait_for_response()
        refused = await rig.slash(general, user, "write", {"topic": "a lighthouse"})
        await refused.wait_for_response()
        shown = await rig.slash(general, admin, "access", {}, "show")
        await shown.wait_for_response()
        cleared = await rig.slash(general, admin, "access", {"user": user}, "clear")
        await cleared.wait_for_response()
        again = await rig.slash(general, user, "write", {"topic": "a lighthouse"})
        final = await rig.final(again)
    assert "needs the Manage Server permission" in refusal_of(rig, attempt)["data"]["content"]
    assert refusal_of(rig, done)["data"]["content"] == "Done: that is now blocked on this server."
    assert refusal_of(rig, refused)["data"] == {**refusal_of(rig, refused)["data"], "flags": EPHEMERAL,
                                                "content": "Sorry: you are blocked from using the bot on this server"}
    assert f"blocked users: <@{user}>" in refusal_of(rig, shown)["data"]["content"]
    assert refusal_of(rig, cleared)["data"]["content"] == "Done: this server's own rule for that is removed."
    assert final.content and not final.ephemeral


async def test_the_daily_budget_refuses_once_spent_and_resets_the_next_day(rig: DiscordRig, tmp_path: Path) -> None:
    guild, general, user = rig.seed.guild.id, rig.seed.general.id, rig.seed.user.id
    rules = write_access(tmp_path / "access.toml", f"[default]\ndaily_tokens = 1000\n"
                                                   f"[servers.{guild}]\ndaily_tokens = 20\n")
    now = [NOON]
    async with rig.running(access_file=rules, wall_clock=lambda: now[0]) as bot:
        usage = bot.service.access.usage
        for expected in (16, 32):  # 16 tokens a paragraph: the second one goes over 20
            await rig.final(await rig.slash(general, user, "write", {"topic": "a lighthouse"}))
            await rig.until(lambda expected=expected: _used(usage, guild, expected))
        refused = await rig.slash(general, user, "write", {"topic": "a lighthouse"})
        await refused.wait_for_response()
        stats = await rig.slash(general, user, "stats")
        await stats.wait_for_response()
        now[0] += 12 * 3600  # midnight UTC: a new day
        again = await rig.final(await rig.slash(general, user, "write", {"topic": "a lighthouse"}))
        await rig.until(lambda: _used(usage, guild, 16))
    answer = refusal_of(rig, refused)["data"]
    assert answer["flags"] == EPHEMERAL and answer["content"] == (
        "Sorry: this server has used today's budget of 20 tokens: it starts again at midnight UTC, in 12 h 0 min")
    assert "today on this server: 32 tokens written of 20 (resets in 12 h 0 min)" in refusal_of(rig, stats)["data"]["content"]
    assert again.content and len(rig.fake.threads_of(general)) == 3


async def test_the_days_use_survives_a_restart(rig: DiscordRig, tmp_path: Path) -> None:
    guild, general, user = rig.seed.guild.id, rig.seed.general.id, rig.seed.user.id
    rules = write_access(tmp_path / "access.toml", "[default]\ndaily_tokens = 10\n")
    async with rig.running(access_file=rules, wall_clock=lambda: NOON) as bot:
        await rig.final(await rig.slash(general, user, "write", {"topic": "a lighthouse"}))
        await rig.until(lambda: _used(bot.service.access.usage, guild, 16))
    async with rig.running(access_file=rules, wall_clock=lambda: NOON + 60):
        refused = await rig.slash(general, user, "write", {"topic": "a lighthouse"})
        await refused.wait_for_response()
    assert "used today's budget of 10 tokens" in refusal_of(rig, refused)["data"]["content"]


async def _used(usage: Any, guild_id: int, tokens: int) -> bool:
    return (await usage(guild_id)).used == tokens


async def test_a_blocked_members_lines_in_a_story_thread_do_not_join_the_story(rig: DiscordRig,
                                                                              tmp_path: Path) -> None:
    muted, role = muted_member(rig)
    rules = write_access(tmp_path / "access.toml", f"[default]\nblocked_roles = [{role}]\n")
    async with rig.running(access_file=rules) as bot:
        first = await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "a gull"}))
        story = await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
        await rig.fake.user_message(first.id, muted, "Spam, spam, spam.")
        await rig.fake.user_message(first.id, rig.seed.admin.id, "Then a gull landed on the rail.")

        async def user_turns() -> list[Any]:
            return [t for t in await bot.service.storage.turns(story.id) if t.kind == "user"]

        await rig.until(user_turns)
        await rig.settle()  # the muted member's message is handled by now too
        turns = await user_turns()
    assert [t.author_id for t in turns] == [rig.seed.admin.id]
