"""The generation engine: one worker thread that owns the models and batches every request.

It owns the worker loop (worker.py), what flows through it (requests.py: requests, handles,
events, rows), the fair waiting line (fair_queue.py) and its figures (metrics.py). Nothing
here knows about Discord, storage or the sentences users read; only this package and
`models/` import torch.
"""
