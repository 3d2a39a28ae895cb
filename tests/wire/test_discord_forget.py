"""After /forget the story's buttons go, the reply says so, and a click on a forgotten story says
it was forgotten (issue 11, point 6). The messages to tidy are read from the stored story (the
message ids storage records) before it is deleted: there is no tracker of buttons."""

from __future__ import annotations

from typing import Any

from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from testing.buttons import button_ids
from tests.conftest import DiscordRig


async def story_of_two_paragraphs(rig: DiscordRig, bot: Any) -> tuple[Any, Any]:
    """/write in #general, then Continue: (the first message, the second, which has the buttons)."""
    seed, general = rig.seed, rig.seed.general.id
    first = await rig.final(await rig.slash(general, seed.user.id, "write", {"topic": "a lighthouse"}))
    await rig.until(lambda: bot.service.storage.story_for_thread(first.id))
    await rig.click(general, seed.user.id, first.id, CONTINUE_ID)
    second = await rig.final_in(first.id)  # in the story's thread; now the one with buttons
    await rig.fake.wait_until(lambda: first.components == [])
    return first, second


async def test_forget_removes_the_buttons_and_says_so(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        first, second = await story_of_two_paragraphs(rig, bot)
        forget = await rig.slash(first.id, rig.seed.admin.id, "forget")
        reply = await forget.wait_until_original(lambda m: bool(m.content))
        await rig.fake.wait_until(lambda: second.components == [])
    cleared = [c for c in rig.payloads() if c.path.endswith(f"/messages/{second.id}")]
    assert cleared and cleared[-1].json.get("components") == []
    assert reply.ephemeral and "buttons" in reply.content and reply.content.startswith("Forgotten: 2 paragraph(s)")


async def test_a_click_under_a_forgotten_story_hears_it_was_forgotten(rig: DiscordRig) -> None:
    async with rig.running() as bot:
        first, second = await story_of_two_paragraphs(rig, bot)
        # Discord refuses to take the buttons away, so a member can still click them.
        rig.fake.inject("PATCH", rf"/messages/{second.id}$", status=403)
        forget = await rig.slash(first.id, rig.seed.admin.id, "forget")
        await forget.wait_until_original(lambda m: bool(m.content))
        assert button_ids(second) == [CONTINUE_ID, REGENERATE_ID]
        click = await rig.click(first.id, rig.seed.user.id, second.id, CONTINUE_ID)
        (answer,) = await click.wait_for_followups()
        await rig.fake.wait_until(lambda: second.components == [])  # the click takes them away
    assert answer.ephemeral and "this story was forgotten" in answer.content
    assert "no story here yet" not in answer.content
