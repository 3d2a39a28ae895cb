"""The final message says how the paragraph was written, with the seed that writes it again, and
/story export keeps the same facts (issue 11, point 4)."""

from __future__ import annotations

import re

from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig

# No seed: the engine draws one. The minimum equals the length, so the limit always cuts.
UNSEEDED = {**{name: value for name, value in DISCORD_TEST_SETTINGS.items() if name != "seed"},
            "min_new_tokens": 16}
FOOTER = re.compile(r"\n-# (?P<facts>[^\n]+)$")


def split_footer(content: str) -> tuple[str, str]:
    match = FOOTER.search(content)
    assert match, f"no footer: {content!r}"
    return content[:match.start()].rstrip(), match["facts"]


async def test_the_footer_names_model_settings_seed_and_cut_and_the_seed_reproduces(rig: DiscordRig) -> None:
    seed, general = rig.seed, rig.seed.general.id
    options = {"topic": "a lighthouse keeper", "strategy": "top_k", "length": 12}
    async with rig.running(settings=UNSEEDED) as bot:
        first = await rig.final(await rig.slash(general, seed.user.id, "write", options))
        paragraph, facts = split_footer(first.content)
        drawn = re.search(r"seed (\d+)", facts)
        assert drawn, facts
        story = await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
        # The seed shown, set as the channel's seed, writes the same paragraph again.
        change = await rig.slash(seed.second.id, seed.admin.id, "settings",
                                 {"name": "seed", "value": drawn[1]}, subcommand="set")
        await change.wait_until_original(lambda m: bool(m.content))
        again = await rig.final(await rig.slash(seed.second.id, seed.user.id, "write", options))
        export = await rig.slash(first.id, seed.user.id, "story", subcommand="export")
        reply = await export.wait_until_original(lambda m: bool(m.attachments))
        turns = await bot.service.storage.turns(story.id)
    assert facts.startswith(f"{rig.model_name} · top_k · ")
    assert "max_new_tokens 12 · min_new_tokens 12" in facts and "cut at 12 tokens" in facts
    assert "temperature" not in facts  # only settings that differ from the channel's
    assert split_footer(again.content)[0] == paragraph
    assert f"seed {drawn[1]}" in split_footer(again.content)[1]
    assert turns[0].text == paragraph and turns[0].facts["seed"] == int(drawn[1])
    exported = reply.attachments[0].data.decode("utf-8")
    assert f"*{facts}*" in exported
