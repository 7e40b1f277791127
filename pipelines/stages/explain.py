"""`explain`: every check of one row, in order: its scores, its thresholds, its verdict, and the reason that won.

    python -m pipelines explain CONFIG --caption "..." [--image FILE]
    python -m pipelines explain --version NAME@VERSION --row N [CONFIG]

With `--caption` the caption (and the image, when given) is measured now by the same code
as the build (`pipelines.filters.chain.TextChain`, `pipelines.stages.image`); its repeat
count is counted over CONFIG's source list when that can be read, as the build counts
it. With `--row` the row's recorded scores (`scores.parquet`) are read back and decided
with the version's stored config, or with CONFIG's thresholds when one is given (the
one-row form of `whatif`); the answer names what the build decided and must equal it
with the stored config (tests/e2e/test_quality_replay.py). Dedup needs every other image,
so `--caption` stops before it; `--row` replays it over the whole version.
"""

from __future__ import annotations

import argparse
import io
import os
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc
from PIL import Image, ImageOps

from catalog.config import load_config
from catalog.errors import UserError
from catalog.rejects import format_value
from pipelines.filters.chain import TEXT_SCORES, TextChain
from pipelines.filters.clean import caption_repeat_key
from pipelines.stages.config import BuildConfig
from pipelines.stages.image import decode_phash
from pipelines.stages.replay import UNKNOWN, Check, Replay, load_built
from pipelines.stages.source import read_source


@dataclass
class Explanation:
    title: str
    checks: list[Check]
    reason: str | None  # None: kept; UNKNOWN: a check could not be decided
    stage: str | None
    notes: list[str]
    recorded: tuple[str | None, str | None] | None = None  # (reason, stage) the build recorded (--row)


def measure(
    cfg: BuildConfig, caption: str | None, image: bytes | None, chain: TextChain | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A row's scores measured now: the text chain on `caption`, the image checks' inputs on `image`."""
    scores: dict[str, Any] = {}
    notes: list[str] = []
    if caption is not None and cfg.source.modality != "image":
        row = (chain or TextChain(cfg.filter)).run([{"caption": caption}])[0]
        scores.update({k: row[k] for k in TEXT_SCORES})
        scores["repeat_count"], note = _repeat_count(cfg, caption)
        notes += [f"caption as the build keeps it: {row['caption']!r}", note]
    if image is not None:
        size = _upright_size(image)
        ph = decode_phash(image)
        scores.update(
            download_status="success" if size else "failed_to_resize",
            download_error=None if size else "image does not decode",
            orig_width=size[0] if size else None,
            orig_height=size[1] if size else None,
            decoded=ph is not None,
            phash=ph,
        )
        notes.append("image: a local file (not fetched); dedup needs the build's other images and is not checked")
    elif cfg.source.modality != "text":
        notes.append("no --image: the download and image checks cannot be decided")
    return scores, [n for n in notes if n]


def _upright_size(data: bytes) -> tuple[int, int] | None:
    """The displayed size (EXIF orientation applied, as the download probe does), or None when it does not open."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return ImageOps.exif_transpose(im).size
    except Exception:  # noqa: BLE001 - whatever PIL raises, the file is not an image
        return None


def _repeat_count(cfg: BuildConfig, caption: str) -> tuple[int, str]:
    """How many rows of CONFIG's source share the caption's normalised form (at least 1: this one)."""
    try:
        source = read_source(cfg.source)
    except UserError as exc:
        return 1, f"repeat count 1 (this caption alone): the source list could not be read ({exc})"
    key = caption_repeat_key(caption, cfg.filter.max_caption_chars)
    column = source.table.column("caption").to_pylist() if "caption" in source.table.column_names else []
    n = sum(1 for c in column if caption_repeat_key(c, cfg.filter.max_caption_chars) == key)
    return max(n, 1), f"repeat count over {source.uri}: {max(n, 1)}"


def explain_caption(
    cfg: BuildConfig, caption: str | None, image: bytes | None = None, chain: TextChain | None = None
) -> Explanation:
    """`chain`: a TextChain of `cfg.filter` already loaded (explaining many captions in one process)."""
    scores, notes = measure(cfg, caption, image, chain)
    reason, stage, checks = Replay(cfg).fate(scores)
    return Explanation(
        "explain: a caption measured now" + (" with an image" if image else ""), checks, reason, stage, notes
    )


def explain_row(root: str, ref: str, row: int, cfg: BuildConfig | None = None) -> Explanation:
    built = load_built(root, ref)
    hits = built.scores.filter(pc.equal(built.scores.column("row"), row))
    if hits.num_rows == 0:
        raise UserError(f"{built.ref}: no row {row} (rows 0..{built.scores.num_rows - 1})")
    scores = hits.to_pylist()[0]
    replay = Replay(cfg or built.cfg, built.cfg)
    reason, stage, checks = replay.fate(scores)
    notes = [f"key {scores['key']}"]
    if reason is None and replay.images is not None:
        index = built.scores.column("row").to_pylist().index(row)
        reason, stage = replay.fates(built.scores)[index]
        dedup = "enabled" if replay.cfg.dedup.enabled else "off"
        rep = f", duplicate of {scores['duplicate_of']} (recorded)" if scores.get("duplicate_of") else ""
        checks.append(
            Check(
                "dedup",
                "dedup",
                {"phash": scores.get("phash"), "sha256": scores.get("sha256")},
                {"max_hamming": replay.cfg.dedup.max_hamming, "dedup": dedup},
                reason,
            )
        )
        if rep:
            notes.append(rep.strip(", "))
    title = f"explain: {built.ref} row {row}" + (" with CONFIG's thresholds" if cfg is not None else "")
    return Explanation(title, checks, reason, stage, notes, (scores["reason"], scores["stage"]))


def _fmt(value: Any) -> str:
    """`catalog.rejects.format_value`, long hashes cut to fit the table."""
    text = format_value(value)
    return text[:21] + "..." if len(text) > 24 else text


def render(e: Explanation) -> str:
    lines = [e.title, f"  {'#':>2}  {'check':<20} {'stage':<9} {'scores':<48} {'thresholds':<36} verdict"]
    decided = False
    for i, c in enumerate(e.checks, 1):
        scores = " ".join(f"{k}={_fmt(v)}" for k, v in c.scores.items()) or "-"
        limits = " ".join(f"{k}={_fmt(v)}" for k, v in c.thresholds.items()) or "-"
        verdict = c.verdict if not c.missing else f"unknown (no {', '.join(c.missing)})"
        mark = ""
        if not decided and (c.reason is not None or c.missing):
            mark, decided = "  <- decides", True
        elif decided:
            verdict += " (after the deciding check)"
        lines.append(f"  {i:>2}  {c.name:<20} {c.stage:<9} {scores:<48} {limits:<36} {verdict}{mark}")
    if e.reason is None:
        lines.append("  decision: kept")
    elif e.reason == UNKNOWN:
        lines.append(f"  decision: unknown at the {e.stage} stage (a score it needs was never measured)")
    else:
        lines.append(f"  decision: rejected: {e.reason} (stage {e.stage})")
    if e.recorded is not None:
        reason, stage = e.recorded
        lines.append(f"  the build decided: {'kept' if reason is None else f'rejected: {reason} (stage {stage})'}")
    lines += [f"  {n}" for n in e.notes]
    return "\n".join(lines)


def add_parser(subparsers: Any) -> None:
    text = "print every check of one caption/image or one built row: scores, thresholds, verdicts, the deciding reason"
    p = subparsers.add_parser("explain", help=text, description=text)
    p.add_argument(
        "config", nargs="?", help="build config YAML (with --row: thresholds to apply instead of the stored ones)"
    )
    p.add_argument("--caption", help="a caption to measure now")
    p.add_argument("--image", help="an image file to measure with it")
    p.add_argument("--version", metavar="NAME@VERSION", help="a build version whose recorded row to explain")
    p.add_argument("--row", type=int, help="input row number (0-based) in that version")
    p.add_argument("--root", default=None, help="datasets root for --version (default: $LIPFORGE_ROOT or ./data)")


def main(args: argparse.Namespace) -> int:
    if (args.row is None) != (args.version is None):
        raise UserError("explain: --row and --version go together (e.g. --version demo@1 --row 17)")
    if args.row is not None:
        if args.caption is not None or args.image is not None:
            raise UserError("explain: give either --caption/--image with CONFIG, or --version/--row")
        cfg = load_config(BuildConfig, args.config) if args.config else None
        root = args.root or os.environ.get("LIPFORGE_ROOT") or "./data"
        print(render(explain_row(root, args.version, args.row, cfg)))
        return 0
    if args.config is None or (args.caption is None and args.image is None):
        raise UserError("explain: give CONFIG and --caption TEXT (and/or --image FILE), or --version NAME@V --row N")
    image = None
    if args.image is not None:
        try:
            with open(args.image, "rb") as fp:
                image = fp.read()
        except OSError as exc:
            raise UserError(f"explain: --image {args.image}: {exc.strerror}") from None
    cfg = load_config(BuildConfig, args.config)
    print(render(explain_caption(cfg, args.caption, image)))
    return 0
