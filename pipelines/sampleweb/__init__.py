"""A procedurally drawn "web crawl" of captioned shape images with the mess of real crawls,
its ground truth, and (pipelines.webserver) a local HTTP server that serves it.

`generate(out_dir, n, seed, base_url, rates)` writes the corpus; see docs/formats.md.
"""

from pipelines.sampleweb.corpus import generate
from pipelines.sampleweb.mess import Rates, category_names

__all__ = ["Rates", "category_names", "generate"]
