"""`python -m pipelines`: data jobs (corpus, assets, build, filter, refresh, augment) and data quality (explain, whatif)."""

import sys

from catalog.cli import run

COMMANDS = [
    "pipelines.assets",
    "pipelines.doctor",
    "pipelines.sampleweb.cli",
    "pipelines.webserver",
    "pipelines.stages.cli",
    "pipelines.views.cli",
    "pipelines.views.preview",
    "pipelines.stages.refresh",
    "pipelines.stages.explain",
    "pipelines.stages.whatif",
]

if __name__ == "__main__":
    sys.exit(run("python -m pipelines", __doc__, COMMANDS))
