"""/settings show says where each value comes from and which models are offered; a mistyped name
gets a suggestion; the model options autocomplete the offered models (issue 11, point 8)."""

from __future__ import annotations

from typing import Any

from tests.conftest import DiscordRig

AUTOCOMPLETE_RESULT = 8


async def ask(rig: DiscordRig, channel_id: int, user_id: int, subcommand: str,
              options: dict[str, Any] | None = None) -> str:
    ix = await rig.slash(channel_id, user_id, "settings", options, subcommand=subcommand)
    reply = await ix.wait_until_original(lambda m: bool(m.content))
    assert reply.ephemeral
    (callback,) = rig.fake.interaction_responses(ix.id)
    return str(callback.json["data"]["content"])


async def choices(rig: DiscordRig, name: str, typed: dict[str, str], focused: str,
                  subcommand: str | None = None) -> list[str]:
    ix = await rig.fake.autocomplete(rig.seed.guild.id, rig.seed.general.id, rig.seed.user.id, name, typed,
                                     focused, subcommand)
    await ix.wait_for_response()
    (callback,) = rig.fake.interaction_responses(ix.id)
    assert callback.json["type"] == AUTOCOMPLETE_RESULT
    return [choice["value"] for choice in callback.json["data"]["choices"]]


async def test_settings_show_names_each_source_and_the_offered_models(rig: DiscordRig) -> None:
    seed = rig.seed
    async with rig.running() as bot:
        await ask(rig, seed.general.id, seed.admin.id, "set", {"name": "temperature", "value": "0.7"})
        shown = await ask(rig, seed.general.id, seed.user.id, "show")
        offered = ", ".join(bot.service.models)
    lines = {line.split(" = ")[0]: line for line in shown.splitlines() if " = " in line}
    assert lines["temperature"] == "temperature = 0.7  (channel; 0.05 to 2)"
    assert lines["seed"].startswith("seed = 7  (server; ")  # the rig sets the tests' settings server-wide
    assert lines["top_k"] == "top_k = 40  (built-in; 0 to 1000)"
    assert lines["model"].endswith(f"(built-in; offered: {offered})")
    assert "text of at most" not in lines["model"]


async def test_a_mistyped_setting_gets_did_you_mean(rig: DiscordRig) -> None:
    async with rig.running():
        answer = await ask(rig, rig.seed.general.id, rig.seed.admin.id, "set", {"name": "temprature", "value": "1"})
    assert answer == "Sorry: unknown setting 'temprature': did you mean temperature?"


async def test_the_model_options_autocomplete_the_offered_models(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        write_all = await choices(rig, "write", {"topic": "owls", "model": ""}, "model")
        write_typed = await choices(rig, "write", {"topic": "owls", "model": "ls"}, "model")
        settings = await choices(rig, "settings", {"name": "model", "value": "mar"}, "value", "set")
        offered = list(bot.service.models)
    assert write_all == offered and write_typed == ["lstm"] and settings == ["markov"]
