"""A real serving engine over loopback: `transformers serve` (an OpenAI-compatible server with
streaming, from transformers[serving]) serving a tiny chat GPT-2 the test writes; /write goes
fake Discord -> the bot -> the real server -> a paragraph in the channel, stored, and Continue
works. Select it with `-m remote_server` (about 20 s, most of it the server's start-up)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.discord.views import CONTINUE_ID, REGENERATE_ID
from bot.engine.remote.spec import RemoteModel
from testing.buttons import button_ids
from tests.conftest import DISCORD_TEST_SETTINGS, DiscordRig, paragraph_of
from tests.tiny_models import write_tiny_gpt2

pytestmark = pytest.mark.remote_server
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteModel]:
    """`transformers serve` on a free loopback port, serving a tiny chat GPT-2; stopped after."""
    folder = write_tiny_gpt2(tmp_path_factory.mktemp("served") / "tiny-chat", chat=True)
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([str(cli), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
                               "--device", "cpu"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_healthy(port, server)
        yield RemoteModel(name="served", urls=(f"http://127.0.0.1:{port}/v1",), served_model=str(folder),
                          dialect="openai", first_token_timeout_s=60.0, stall_timeout_s=30.0, context_tokens=512)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_until_healthy(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"transformers serve exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("transformers serve did not start in time")


async def test_write_and_continue_through_a_real_openai_compatible_server(
        rig: DiscordRig, served_model: RemoteModel) -> None:
    general = rig.seed.general.id
    # Only what an OpenAI-dialect server honours, so the paragraph carries no "not supported" note.
    settings = {**DISCORD_TEST_SETTINGS, "model": "served", "max_new_tokens": 12, "min_new_tokens": 0,
                "top_k": 0, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "dry_multiplier": 0.0}
    async with rig.running(settings=settings, remote=(served_model,)) as bot:
        ix = await rig.slash(general, rig.seed.user.id, "write", {"topic": "a lighthouse keeper"})
        final = await rig.final(ix, timeout=60)
        story = await rig.until(lambda: bot.service.storage.story_for_thread(final.id), timeout=10)
        await rig.fake.wait_until(lambda: button_ids(final) == [CONTINUE_ID, REGENERATE_ID])
        await rig.click(general, rig.seed.user.id, final.id, CONTINUE_ID)
        after = await rig.final_in(final.id, timeout=60)
        turns = await bot.service.storage.turns(story.id)
        stats = bot.service.stats()
    assert "Sorry" not in final.content and paragraph_of(final.content).strip()
    assert [t.text for t in turns] == [paragraph_of(final.content), paragraph_of(after.content)]
    assert final.content.rsplit("\n", 1)[-1].startswith("-# served · ")
    assert stats.requests_done == 2 and stats.endpoints[0].state == "closed"
