"""The text chain against the sample web corpus's truth (pipelines.sampleweb).

For two generated 2,000-row corpora, every row whose truth fate is `keep` or a text reason
must get exactly that verdict from `TextChain`, and a kept row exactly truth's
`clean_caption` (cleaned, person names -> `<person>`). Rows whose fate is a later,
non-text reason (repeated_caption, download or image faults) carry a clean caption, so
the text chain must keep them too: repeated_caption is counted over the whole input by
the build, not by the chain. Generating the corpus calls apertium for Spanish/Catalan.
"""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest

from catalog.reasons import KEEP
from pipelines.filters import TextChain
from pipelines.sampleweb import generate

ROWS = 2000
SEEDS = (7, pytest.param(11, marks=pytest.mark.slow))  # a second corpus in the full run only


def mismatches(chain: TextChain, corpus: str) -> tuple[list[tuple[str, str, object, object]], Counter[str]]:
    """(category, caption, expected, got) for every row the chain gets wrong; fates seen."""
    urls = pq.read_table(f"{corpus}/urls.parquet").to_pylist()
    truth = pq.read_table(f"{corpus}/truth.parquet").to_pylist()
    assert [u["url"] for u in urls] == [t["url"] for t in truth]
    out = chain.run([{"caption": u["caption"]} for u in urls])
    per_row = {f.reason for f in chain.filters}
    bad = []
    for u, t, row in zip(urls, truth, out):
        expected = t["fate"] if t["fate"] in per_row else None
        if row["reason"] != expected:
            bad.append((t["category"], u["caption"], expected, row["reason"]))
        elif t["fate"] == KEEP and row["caption"] != t["clean_caption"]:
            bad.append((t["category"], u["caption"], t["clean_caption"], row["caption"]))
    return bad, Counter(t["fate"] for t in truth)


@pytest.mark.parametrize("seed", SEEDS)
def test_text_chain_matches_corpus_truth(chain, tmp_path, seed):
    generate(tmp_path / "corpus", ROWS, seed)
    bad, fates = mismatches(chain, str(tmp_path / "corpus"))
    # the corpus exercises every text reason and kept rows, so the comparison means something
    for fate in (KEEP, "empty_caption", "meaningless_caption", "not_english", "single_pos"):
        assert fates[fate] > 0, (fate, dict(fates))
    assert bad == [], f"{len(bad)} rows differ from truth (category, caption, expected, got): {bad[:20]}"
