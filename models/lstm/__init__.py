"""A small topic-conditioned word-level LSTM backend: tokenizer, model, training, evaluation.

`LSTMBackend.load()` reads the shipped checkpoint `data/lstm/best.pt`; `python -m
models.lstm.train` trains a new one and `python -m models.lstm.evaluate` compares it with
the Markov chain (models.markov) on the same held-out split.
"""
