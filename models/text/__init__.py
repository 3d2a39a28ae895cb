"""Word-level text shared by the project's own models (the LSTM and the Markov chain): the
corpus's examples and their split (data.py), the word tokenizer and vocabulary (tokenizer.py),
and where the project's data lives."""
