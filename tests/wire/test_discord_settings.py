"""/settings and /stats over the wire: who may change what, and what everyone may see."""

from __future__ import annotations

from typing import Any

from bot.preferences import ALL_SETTINGS
from cogs.settings import name_suggestions, value_suggestions
from tests.conftest import DiscordRig


async def answer(rig: DiscordRig, channel_id: int, user_id: int, sub: str, options: dict[str, Any]) -> Any:
    ix = await rig.slash(channel_id, user_id, "settings", options, subcommand=sub)
    return await ix.wait_until_original(lambda m: bool(m.content))


async def test_settings_show_works_for_everyone_and_is_private(rig: DiscordRig) -> None:
    async with rig.running():
        shown = await answer(rig, rig.seed.general.id, rig.seed.user.id, "show", {})
    assert shown.ephemeral and "max_new_tokens = 16  (server; 8 to 512)" in shown.content


async def test_a_member_without_manage_channels_cannot_change_settings(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        refused = await answer(rig, rig.seed.general.id, rig.seed.user.id, "set",
                               {"name": "temperature", "value": "0.9"})
        stored = await bot.service.storage.get_settings("channel", rig.seed.general.id)
    assert refused.ephemeral
    assert refused.content == "Sorry: changing this channel's settings needs the Manage Channels permission"
    assert stored == {}


async def test_a_moderator_changes_a_setting_and_everyone_sees_it(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running():
        done = await answer(rig, general, rig.seed.admin.id, "set", {"name": "temperature", "value": "0.9"})
        shown = await answer(rig, general, rig.seed.user.id, "show", {})
    assert done.ephemeral and done.content == "temperature is now 0.9 for this channel."
    assert "temperature = 0.9" in shown.content


async def test_out_of_range_values_and_wrong_scopes_get_clear_refusals(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running():
        too_hot = await answer(rig, general, rig.seed.admin.id, "set", {"name": "temperature", "value": "5"})
        unknown = await answer(rig, general, rig.seed.admin.id, "set", {"name": "colour", "value": "red"})
        no_thread = await answer(rig, general, rig.seed.admin.id, "set",
                                 {"name": "top_k", "value": "5", "scope": "thread"})
        not_offered = await answer(rig, general, rig.seed.admin.id, "set", {"name": "model", "value": "gpt2-xl"})
    assert too_hot.content == "Sorry: temperature must be in 0.05 to 2, got 5"
    assert not_offered.content.startswith("Sorry: model must be one of smollm2, lstm, markov")
    assert unknown.content.startswith("Sorry: unknown setting 'colour'; settings: model, strategy")
    assert no_thread.content == "Sorry: thread settings can only be set inside a thread"
    assert too_hot.ephemeral and unknown.ephemeral and no_thread.ephemeral


async def test_server_scope_and_reset(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running() as bot:
        member = await answer(rig, general, rig.seed.user.id, "reset", {"scope": "server"})
        server = await answer(rig, general, rig.seed.admin.id, "set",
                              {"name": "strategy", "value": "greedy", "scope": "server"})
        await answer(rig, general, rig.seed.admin.id, "set", {"name": "top_k", "value": "5"})
        reset = await answer(rig, general, rig.seed.admin.id, "reset", {})
        channel = await bot.service.storage.get_settings("channel", general)
        guild = await bot.service.storage.get_settings("guild", rig.seed.guild.id)
    assert member.content == "Sorry: changing server defaults needs the Manage Server permission"
    assert server.content == "strategy is now greedy for this server." and guild["strategy"] == "greedy"
    assert reset.content == "Settings for this channel are back to defaults." and channel == {}


def test_setting_names_autocomplete_from_the_settings_definition() -> None:
    assert [c.value for c in name_suggestions("top")] == ["top_k", "top_p", "stop_at_paragraph", "stop"]
    assert name_suggestions("temp")[0].name == "temperature: 0.05 to 2"
    assert len(name_suggestions("")) == len(ALL_SETTINGS) == 23  # within Discord's 25 choices


def test_setting_values_autocomplete_to_the_allowed_choices() -> None:
    assert [c.value for c in value_suggestions("strategy", "")] == ["greedy", "beam", "top_k", "top_p", "sample"]
    assert [c.value for c in value_suggestions("stop_at_paragraph", "o")] == ["on", "off"]
    assert [c.value for c in value_suggestions("temperature", "")] == ["0.7"]
    assert value_suggestions("nonsense", "x") == []


async def test_stats_reports_the_engine(rig: DiscordRig) -> None:
    async with rig.running():
        await rig.final(await rig.slash(rig.seed.general.id, rig.seed.user.id, "write", {"topic": "moss"}))
        ix = await rig.slash(rig.seed.general.id, rig.seed.user.id, "stats")
        stats = await ix.wait_until_original(lambda m: bool(m.content))
    assert stats.ephemeral and "requests: 1 done, 0 stopped, 0 failed" in stats.content
    assert "device: cpu" in stats.content and "your position" not in stats.content
