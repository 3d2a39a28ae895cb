"""Fine-tune a causal LM (the embedded SmolLM2, a GPT-2-family model, a local folder) on text.

    python -m models.finetune --model smollm2 --data data/corpus.jsonl --out runs/ft-smollm2

Modules, one job each: `sources` reads paragraphs (corpora, text files, the bot's database),
`examples` turns them into prompt + target token ids in the model's own prompt format,
`adapters` applies LoRA or unfreezes everything, `loop` trains with checkpoints and early
stopping, `export` writes a regular model folder, `cli` is the command line.
"""
