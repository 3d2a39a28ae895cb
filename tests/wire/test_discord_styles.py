"""The `style` setting over the wire: set per channel, read by every prompt there, overridden
by /write's own option (which the story it starts keeps), and shown as not applying to the
word-level models."""

from __future__ import annotations

from typing import Any

from tests.conftest import DiscordRig

GOTHIC = "gothic horror, second person"


async def answer(rig: DiscordRig, channel_id: int, user_id: int, sub: str, options: dict[str, Any]) -> Any:
    ix = await rig.slash(channel_id, user_id, "settings", options, subcommand=sub)
    return await ix.wait_until_original(lambda m: bool(m.content))


async def test_a_channels_style_reaches_the_prompt_and_write_overrides_it_once(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running():
        done = await answer(rig, general, rig.seed.admin.id, "set", {"name": "style", "value": GOTHIC})
        styled = await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": "a lighthouse"}))
        once = await rig.final(await rig.slash(general, rig.seed.user.id, "write",
                                               {"topic": "a harbour", "style": "en français"}))
        assert rig.scripted is not None
        prompts = [p for p in rig.scripted.prompts if not p.history]
    assert done.ephemeral and done.content == f"style is now {GOTHIC} for this channel."
    assert styled.content and once.content
    assert [(p.topic, p.style) for p in prompts] == [("a lighthouse", GOTHIC), ("a harbour", "en français")]


async def test_settings_show_says_a_style_does_not_apply_to_the_lstm(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running():
        await answer(rig, general, rig.seed.admin.id, "set", {"name": "style", "value": GOTHIC})
        await answer(rig, general, rig.seed.admin.id, "set", {"name": "model", "value": "lstm"})
        shown = await answer(rig, general, rig.seed.user.id, "show", {})
    assert shown.ephemeral and f"style = {GOTHIC}: does not apply to lstm  (channel;" in shown.content


async def test_a_style_with_mentions_is_stored_without_them(rig: DiscordRig) -> None:
    general = rig.seed.general.id
    async with rig.running() as bot:
        done = await answer(rig, general, rig.seed.admin.id, "set",
                            {"name": "style", "value": f"noir for <@{rig.seed.user.id}> and @everyone"})
        stored = await bot.service.storage.get_settings("channel", general)
    assert done.content == "style is now noir for and everyone for this channel."
    assert stored == {"style": "noir for and everyone"}
