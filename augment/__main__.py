"""`python -m augment`: precomputed views (EDA, back-translation, multi-crop) for dataset versions."""

import sys

from pipelines.cli import run

COMMANDS = ["augment.cli", "augment.cli_preview"]

if __name__ == "__main__":
    sys.exit(run("python -m augment", __doc__, COMMANDS))
