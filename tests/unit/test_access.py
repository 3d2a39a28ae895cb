"""The access file's format, its reloading, the rules' decisions and the budget's day, and the
storage behind branches and access (real SQLite files)."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import pytest

from bot.access import AccessControl, refusal
from bot.access_file import AccessFile, AccessFileError, AccessRules, parse_access
from bot.branching import Branching
from bot.messages import (
    ACCESS_CHANNEL_BLOCKED,
    ACCESS_CHANNEL_NOT_ALLOWED,
    ACCESS_MEMBER_NOT_ALLOWED,
    ACCESS_ROLE_BLOCKED,
    ACCESS_USER_BLOCKED,
    AccessDenied,
    BudgetSpent,
    PermissionDenied,
)
from bot.place import Place
from bot.storage import Storage

GUILD, CHANNEL, THREAD, USER, ROLE = 10, 20, 21, 30, 40


def test_a_servers_section_adds_to_the_default_lists_and_replaces_its_budget() -> None:
    config = parse_access(f"[default]\ndaily_tokens = 100\nblocked_users = [1]\n"
                          f"[servers.{GUILD}]\ndaily_tokens = 5\nblocked_users = [2]\nallowed_roles = [{ROLE}]\n")
    rules = config.for_guild(GUILD)
    assert rules.blocked_users == {1, 2} and rules.allowed_roles == {ROLE} and rules.daily_tokens == 5
    assert config.for_guild(999) == AccessRules(blocked_users=frozenset({1}), daily_tokens=100)


@pytest.mark.parametrize(("text", "says"), [
    ("[default]\nblocked_users = 'me'\n", "blocked_users must be a list of Discord ids"),
    ("[default]\nblocked_user = [1]\n", "unknown key 'blocked_user'"),
    ("[default]\ndaily_tokens = 0\n", "daily_tokens must be a whole number of tokens, 1 or more"),
    ("[servers.general]\n", "[servers.general] must be a server id"),
    ("[everyone]\n", "unknown section 'everyone'"),
    ("[default\n", "is not valid TOML"),
])
def test_a_bad_access_file_is_refused_with_the_problem_named(text: str, says: str) -> None:
    with pytest.raises(AccessFileError) as refused:
        parse_access(text)
    assert says in str(refused.value)


@pytest.mark.parametrize(("rules", "user", "roles", "channels", "reason"), [
    (AccessRules(), USER, [], [CHANNEL], None),
    (AccessRules(blocked_users=frozenset({USER})), USER, [], [CHANNEL], ACCESS_USER_BLOCKED),
    (AccessRules(blocked_roles=frozenset({ROLE})), USER, [ROLE], [CHANNEL], ACCESS_ROLE_BLOCKED),
    (AccessRules(blocked_channels=frozenset({CHANNEL})), USER, [], [THREAD, CHANNEL], ACCESS_CHANNEL_BLOCKED),
    (AccessRules(allowed_channels=frozenset({99})), USER, [], [CHANNEL], ACCESS_CHANNEL_NOT_ALLOWED),
    (AccessRules(allowed_roles=frozenset({99})), USER, [ROLE], [CHANNEL], ACCESS_MEMBER_NOT_ALLOWED),
    (AccessRules(allowed_roles=frozenset({ROLE})), USER, [ROLE], [CHANNEL], None),
    (AccessRules(allowed_roles=frozenset({99}), allowed_users=frozenset({USER})), USER, [], [CHANNEL], None),
    (AccessRules(allowed_users=frozenset({USER}), blocked_roles=frozenset({ROLE})), USER, [ROLE], [CHANNEL],
     ACCESS_ROLE_BLOCKED),  # a block wins over an allow
])
def test_the_rules_decide_and_say_why(rules: AccessRules, user: int, roles: list[int], channels: list[int],
                                      reason: str | None) -> None:
    assert refusal(rules, user, roles, channels) == reason


def test_the_access_file_is_read_again_only_when_it_changes_and_a_broken_change_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    path.write_text("[default]\nblocked_users = [1]\n", encoding="utf-8")
    rules = AccessFile(path)
    assert rules.current().default.blocked_users == {1}
    path.write_text("[default]\nblocked_users = [1, 2]\n", encoding="utf-8")
    assert rules.current().default.blocked_users == {1, 2}
    path.write_text("[default]\nblocked_users = [1, 2, oops\n", encoding="utf-8")
    assert rules.current().default.blocked_users == {1, 2}
    os.remove(path)
    assert rules.current().default == AccessRules()


async def test_server_rules_add_to_the_files_and_only_managers_change_them(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    path.write_text(f"[default]\nblocked_channels = [{CHANNEL}]\n", encoding="utf-8")
    manager = Place(channel_id=CHANNEL, user_id=1, guild_id=GUILD)
    member = Place(channel_id=CHANNEL, user_id=USER, guild_id=GUILD, can_manage_guild=False)
    async with await Storage.open(tmp_path / "bot.db") as storage:
        access = AccessControl(storage, AccessFile(path))
        await access.set_rule(manager, "user", USER, "block")
        with pytest.raises(PermissionDenied):
            await access.set_rule(member, "user", USER, None)
        rules = await access.rules_for(GUILD)
        with pytest.raises(AccessDenied, match="you are blocked"):
            await access.check(Place(channel_id=77, user_id=USER, guild_id=GUILD))
        await access.set_rule(manager, "user", USER, "allow")  # replaces the block
        allowed = await access.rules_for(GUILD)
    assert rules.blocked_users == {USER} and rules.blocked_channels == {CHANNEL}
    assert allowed.blocked_users == set() and allowed.allowed_users == {USER}


async def test_the_budget_counts_per_server_per_utc_day(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    path.write_text("[default]\ndaily_tokens = 50\n", encoding="utf-8")
    late = datetime.datetime(2026, 11, 30, 23, 59, tzinfo=datetime.UTC).timestamp()
    now = [late]
    place = Place(channel_id=CHANNEL, user_id=USER, guild_id=GUILD)
    async with await Storage.open(tmp_path / "bot.db") as storage:
        access = AccessControl(storage, AccessFile(path), clock=lambda: now[0])
        await access.record(GUILD, 30)
        await access.record(GUILD, 20)
        await access.record(GUILD + 1, 999)  # another server's use is its own
        with pytest.raises(BudgetSpent, match="budget of 50 tokens.*in 1 min"):
            await access.check_budget(place)
        now[0] += 120  # two minutes later: the next UTC day
        await access.check_budget(place)
        usage = await access.usage(GUILD)
    assert usage is not None and usage.used == 0 and usage.limit == 50


async def test_a_branch_copies_the_turns_up_to_its_paragraph_and_leaves_the_original(tmp_path: Path) -> None:
    async with await Storage.open(tmp_path / "bot.db") as storage:
        story, _ = await storage.start_story(guild_id=GUILD, channel_id=CHANNEL, author_id=USER, topic="t",
                                             model="m", kind="write", text="one", settings={})
        for text in ("two", "three", "four"):
            turn = await storage.add_turn(story.id, kind="continue", text=text, settings={}, author_id=USER)
            await storage.set_turn_messages(turn.id, [100 + turn.position])
        shown = await storage.turn_for_message(101)
        branch, copies = await storage.branch_story(story.id, shown.position, guild_id=GUILD, channel_id=CHANNEL,
                                                    author_id=2)
        original = await storage.turns(story.id)
        await storage.forget(CHANNEL)  # deleting both leaves nothing behind
        assert await storage.stories_in_guild(GUILD) == []
    assert shown.text == "two" and [t.text for t in copies] == ["one", "two"]
    assert all(t.message_ids == () for t in copies) and branch.parent_id == story.id and branch.author_id == 2
    assert [t.text for t in original] == ["one", "two", "three", "four"]


async def test_the_story_list_pages_only_what_the_member_may_see_newest_first(service: Any) -> None:
    hidden = 99
    for number in range(12):
        await service.storage.start_story(guild_id=GUILD, channel_id=hidden if number % 3 == 0 else CHANNEL,
                                          author_id=USER, topic=f"story {number}", model="m", kind="write",
                                          text="Once.", settings={})
    branching = Branching(service)
    first = await branching.story_page(GUILD, 1, lambda story: story.channel_id != hidden)
    last = await branching.story_page(GUILD, 7, lambda story: story.channel_id != hidden)  # clamped
    assert (first.total, first.pages, last.page) == (8, 1, 1)
    assert [listing.story.topic for listing in first.listings] == [
        f"story {n}" for n in reversed(range(12)) if n % 3]
    assert all(listing.paragraphs == 1 for listing in first.listings)
