"""`python -m training`: Ray Train pretraining (CLIP, FILIP, FLIP, DeCLIP, FLAVA), evaluation, visual tokenizers, export."""

import sys

from catalog.cli import run

COMMANDS = ["training.cli", "training.eval_cli", "training.tokenizer_cli", "training.export"]

if __name__ == "__main__":
    sys.exit(run("python -m training", __doc__, COMMANDS))
