"""A story's thread gets a clean title: no mention syntax, no markdown, cut at a word within
Discord's 100 characters (issue 11, point 9)."""

from __future__ import annotations

from tests.conftest import DiscordRig

DISCORD_THREAD_NAME_LIMIT = 100


async def thread_name_sent(rig: DiscordRig, topic: str) -> str:
    general = rig.seed.general.id
    async with rig.running():
        await rig.final(await rig.slash(general, rig.seed.user.id, "write", {"topic": topic}))
        await rig.fake.wait_until(lambda: rig.fake.threads_of(general))
    (call,) = [c for c in rig.fake.calls_to("POST", f"/channels/{general}/messages/") if c.path.endswith("/threads")]
    return str(call.json["name"])


async def test_a_thread_name_has_no_mentions_or_markdown(rig: DiscordRig) -> None:
    name = await thread_name_sent(rig, "@everyone <@&123> **unclosed bold")
    assert name == "unclosed bold"


async def test_a_long_topic_is_cut_at_a_word_within_discords_limit(rig: DiscordRig) -> None:
    topic = " ".join(f"lighthouse{i}" for i in range(20))  # 219 characters
    name = await thread_name_sent(rig, f"<#42> __{topic}__")
    words = name.removesuffix("…").split()
    assert len(name) <= DISCORD_THREAD_NAME_LIMIT and name.endswith("…")
    assert words == topic.split()[:len(words)] and len(words) >= 5  # whole words, from the start
