"""Remote models: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, ...) behind the
engine's own interface.

A remote request waits in the engine's fair queue like any other; `dispatcher.py` takes it when
one of its model's replicas has room (at most `max_in_flight` per URL), streams it with the
aiohttp client (`client.py`) and turns the chunks into the same events as the worker's rows.
`dialects.py` maps the settings each server accepts, `breaker.py` is the circuit breaker per
URL, `replicas.py` chooses a replica (a story sticks to one), `spec.py` is what the owner
configures.
"""
