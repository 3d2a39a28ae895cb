"""Text generators: backends, sampling, prompts and training."""
