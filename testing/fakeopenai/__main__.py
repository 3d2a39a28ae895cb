"""`python -m testing.fakeopenai --port 8093 [--chunk-delay 0.01] [--words 100] [--stamp]`: the fake
server on its own, for benchmarks (the bot's remote path measured without a model's cost)."""

from __future__ import annotations

import argparse
import asyncio

from .server import FakeOpenAI


async def serve(args: argparse.Namespace) -> None:
    text = " ".join(f"w{i}" for i in range(args.words)) if args.words else None
    server = FakeOpenAI(models=(args.model,), chunk_delay_s=args.chunk_delay, stamp=args.stamp,
                        **({"text": text} if text else {}))
    await server.start(args.port)
    print(f"fake OpenAI-compatible server at {server.url}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between a stream's chunks")
    parser.add_argument("--words", type=int, default=0, help="stream w0 .. wN-1 (one word a token) instead of the default text")
    parser.add_argument("--stamp", action="store_true", help="each word carries the time it was sent: wN@unix-time")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
