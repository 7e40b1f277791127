"""The raw person names planted in a sample web corpus (to prove none reaches a build's outputs)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def raw_names(corpus: Path) -> set[str]:
    """The part of each raw caption that the truth's clean caption has as <person>."""
    raw = {r["url"]: r["caption"] for r in pq.read_table(corpus / "urls.parquet").to_pylist()}
    out = set()
    for t in pq.read_table(corpus / "truth.parquet").to_pylist():
        clean = t["clean_caption"]
        if t["category"] == "person_name" and "<person>" in clean:
            pre, post = clean.split("<person>", 1)
            caption = raw[t["url"]]
            out.add(caption[len(pre) : len(caption) - len(post)])
    return out
