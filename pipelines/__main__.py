"""`python -m pipelines`: data jobs (corpus, assets, build, filter, refresh, augment)."""

import sys

from pipelines.cli import run

COMMANDS = [
    "pipelines.assets",
    "pipelines.doctor",
    "pipelines.sampleweb.cli",
    "pipelines.webserver",
    "pipelines.build.cli",
    "augment.cli",
    "pipelines.build.refresh",
]

if __name__ == "__main__":
    sys.exit(run("python -m pipelines", __doc__, COMMANDS))
