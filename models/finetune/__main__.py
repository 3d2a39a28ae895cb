"""`python -m models.finetune`: see models/finetune/cli.py."""

from models.finetune.cli import main

main()
