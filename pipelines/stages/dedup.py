"""Stage `dedup`: one representative per group of duplicate images (FILIP section 3.1 removes duplicates).

Two images are duplicates when their downloaded bytes have the same sha256, or their 64-bit
pHashes differ in at most `max_hamming` bits. Candidates are visited in ascending
(key, row) order and an image is kept only if no already-kept image duplicates it, so the
smallest key always survives and the result does not depend on download order.

Near-duplicate search uses multi-index hashing: split the 64 bits into `max_hamming + 1`
bands; two hashes within `max_hamming` bits agree exactly on at least one band
(pigeonhole), so only images sharing a band value are compared.

`representatives` is that rule over lists in one process (`whatif` replays it on stored
scores). A build runs the same rule as Ray tasks over part files (`dedup_parts`), with no
per-image state in the driver:
1. map, one task per group of parts (about MAP_ROWS images): every image's pHash and sha256, and each distinct pHash once
   per band with the band's value, go to a hash bucket of the value;
2. reduce, one task per bucket: values seen twice (identical pHash or bytes), and within
   each (band, value) group the pairs of distinct pHashes within `max_hamming` bits
   (the near-duplicate edges);
3. gather, one task per map group: the images holding such a value ("involved");
4. resolve, one task: the visit above over the involved images only, with identical
   pHashes grouped (the earliest-kept image of a pHash group and of its neighbouring
   groups answers for all of them). An image with a unique pHash, no near neighbour and
   unique bytes is kept and can be nobody's representative, so leaving it out changes
   nothing: the result equals `representatives` exactly, for any number of buckets,
   parts or workers. Its memory grows with the duplicated images, not the input.
Each map task writes one file in bucket order (`pipelines.stages.parts.write_bucketed`) and
each reduce task reads its bucket's row groups of every map file: a round writes
images / MAP_ROWS map files, then 2 x buckets (9 images / ROWS_PER_BUCKET) files, 800 and
3,600 at 400M images (docs/scaling.md).

`dedup.enabled: false` (`pass_dedup`) keeps every image: for a source that lists one image
under several rows on purpose (an eval set with several captions per image).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog import storage
from catalog.parquet import num_rows, read_parquet, read_row_groups, row_group_slices, write_parquet
from pipelines.phash import hamming
from pipelines.stages.parts import bucket_of, groups_of, read_bucket, run_tasks, write_bucketed
from pipelines.stages.workdir import WorkDir

NODE_COLUMNS = ["row", "key", "sha256", "phash"]  # a dedup part: one candidate image per row
ROWS_PER_BUCKET = 2_000_000  # map output rows per reduce task (sets the bucket count from the input size)
MAP_ROWS = 500_000  # images per map (and gather) task: image parts are grouped up to about this many


def bands(max_hamming: int) -> list[tuple[int, int]]:
    """(shift, mask) of `max_hamming + 1` bit bands covering all 64 bits."""
    n = max_hamming + 1
    edges = [round(i * 64 / n) for i in range(n + 1)]
    return [(lo, (1 << (hi - lo)) - 1) for lo, hi in zip(edges, edges[1:])]


def representatives(
    keys: list[str],
    rows: list[int],
    sha256: list[str],
    phash: list[int],
    max_hamming: int,
    prior: tuple[list[str], list[str], list[int]] = ([], [], []),
) -> list[str | None]:
    """For every image, the key of the earlier-kept image it duplicates (in (key, row) order), or None.

    The representative of an exact duplicate is the kept image with its sha256; of a near
    duplicate, the first-kept image within `max_hamming` bits. `prior` = (keys, sha256s,
    pHashes) of images kept before (a refresh's carried samples): they count as kept ahead
    of every candidate, so a new image duplicating one is rejected.
    """
    order = sorted(range(len(keys)), key=lambda i: (keys[i], rows[i]))
    by_sha: dict[str, str] = {}
    parts = bands(max_hamming) if max_hamming >= 0 else []
    tables: list[dict[int, list[int]]] = [defaultdict(list) for _ in parts]
    kept_hashes: list[int] = []
    kept_keys: list[str] = []

    def keep(key: str, sha: str, h: int) -> None:
        by_sha.setdefault(sha, key)
        for (shift, mask), table in zip(parts, tables):
            table[(h >> shift) & mask].append(len(kept_hashes))
        kept_hashes.append(h)
        kept_keys.append(key)

    for key, sha, h in zip(*prior):
        keep(key, sha, h)
    out: list[str | None] = [None] * len(keys)
    for i in order:
        h = phash[i]
        rep = by_sha.get(sha256[i])
        if rep is None:
            near = [
                j
                for (shift, mask), table in zip(parts, tables)
                for j in table.get((h >> shift) & mask, ())
                if hamming(h, kept_hashes[j]) <= max_hamming
            ]
            rep = kept_keys[min(near)] if near else None
        if rep is None:
            keep(keys[i], sha256[i], h)
        else:
            out[i] = rep
    return out


def scatter(nodes: pa.Table, buckets: int, max_hamming: int) -> tuple[pa.Table, list[int]]:
    """Map step over one part's images (NODE_COLUMNS): the rows (kind, band, value, phash) and each row's bucket.

    kind "phash"/"sha" (value = the pHash / sha256, band -1) for the identical-value count;
    kind "band" (band i, value = the band's bits as hex, phash) once per distinct pHash and band.
    """
    kinds: list[str] = []
    band_ids: list[int] = []
    values: list[str] = []
    phashes: list[str | None] = []

    def add(kind: str, band: int, value: str, ph: str | None) -> None:
        kinds.append(kind)
        band_ids.append(band)
        values.append(value)
        phashes.append(ph)

    hashes = nodes.column("phash").to_pylist()
    if max_hamming >= 0:
        for ph in hashes:
            add("phash", -1, ph, None)
        parts = bands(max_hamming)
        for ph in sorted(set(hashes)):
            h = int(ph, 16)
            for i, (shift, mask) in enumerate(parts):
                add("band", i, f"{(h >> shift) & mask:x}", ph)
    for sha in nodes.column("sha256").to_pylist():
        add("sha", -1, sha, None)
    table = pa.table(
        {
            "kind": pa.array(kinds, pa.string()),
            "band": pa.array(band_ids, pa.int16()),
            "value": pa.array(values, pa.string()),
            "phash": pa.array(phashes, pa.string()),
        }
    )
    return table, [bucket_of(f"{k}:{b}:{v}", buckets) for k, b, v in zip(kinds, band_ids, values)]


def reduce_bucket(rows: pa.Table, max_hamming: int) -> tuple[pa.Table, pa.Table]:
    """Reduce step over one bucket's map rows: (repeated (kind, value): pHashes / sha256s seen more
    than once; edges (a, b): distinct pHashes a < b within `max_hamming` bits sharing a band value)."""
    single = rows.filter(pc.not_equal(rows.column("kind"), "band")).select(["kind", "value"])
    counted = single.group_by(["kind", "value"]).aggregate([([], "count_all")])
    repeated = counted.filter(pc.greater(counted.column("count_all"), 1)).select(["kind", "value"])
    groups: dict[tuple[int, str], set[str]] = defaultdict(set)
    band = rows.filter(pc.equal(rows.column("kind"), "band"))
    for b, v, ph in zip(*(band.column(c).to_pylist() for c in ("band", "value", "phash"))):
        groups[(b, v)].add(ph)
    edges: set[tuple[str, str]] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        names = sorted(members)
        ints = np.array([int(ph, 16) for ph in names], dtype=np.uint64)
        for i in range(len(names) - 1):
            close = np.nonzero(np.bitwise_count(ints[i + 1 :] ^ ints[i]) <= max_hamming)[0]
            edges.update((names[i], names[i + 1 + j]) for j in close.tolist())
    a, b = zip(*sorted(edges)) if edges else ((), ())
    return repeated, pa.table({"a": pa.array(a, pa.string()), "b": pa.array(b, pa.string())})


def involved(nodes: pa.Table, repeated: pa.Table, edges: pa.Table) -> pa.Table:
    """The images of one part that hold a repeated pHash or sha256 or a near-duplicate pHash."""
    kind = repeated.column("kind")
    phashes = pa.concat_arrays(
        [
            repeated.filter(pc.equal(kind, "phash")).column("value").combine_chunks(),
            edges.column("a").combine_chunks(),
            edges.column("b").combine_chunks(),
        ]
    )
    shas = repeated.filter(pc.equal(kind, "sha")).column("value").combine_chunks()
    hit = pc.or_(pc.is_in(nodes.column("phash"), value_set=phashes), pc.is_in(nodes.column("sha256"), value_set=shas))
    return nodes.filter(hit)


def resolve(nodes: pa.Table, edges: pa.Table, max_hamming: int) -> pa.Table:
    """The visit of `representatives` over the involved images (NODE_COLUMNS + `prior`): (row,
    duplicate_of, rep_row: the representative's row, -1 when carried) of every rejected candidate. Identical pHashes form a group; a group's
    neighbours are the groups its pHash has an edge to."""
    near: dict[str, list[str]] = defaultdict(list)
    for a, b in zip(edges.column("a").to_pylist(), edges.column("b").to_pylist()):
        near[a].append(b)
        near[b].append(a)
    cols = {c: nodes.column(c).to_pylist() for c in [*NODE_COLUMNS, "prior"]}
    order = sorted(range(nodes.num_rows), key=lambda i: (not cols["prior"][i], cols["key"][i], cols["row"][i]))
    by_sha: dict[str, str] = {}
    first_kept: dict[str, tuple[int, str]] = {}  # pHash -> (kept rank, key) of its earliest-kept image
    kept = 0
    rows: list[int] = []
    reps: list[str] = []
    rep_rows: list[int] = []
    kept_row: dict[str, int] = {}  # key of a kept image -> its row (-1: carried)
    for i in order:
        key, sha, ph = cols["key"][i], cols["sha256"][i], cols["phash"][i]
        rep = None if cols["prior"][i] else by_sha.get(sha)
        if rep is None and not cols["prior"][i] and max_hamming >= 0:
            found = [first_kept[g] for g in (ph, *near.get(ph, ())) if g in first_kept]
            rep = min(found)[1] if found else None
        if rep is None:
            by_sha.setdefault(sha, key)
            first_kept.setdefault(ph, (kept, key))
            kept_row.setdefault(key, cols["row"][i])
            kept += 1
        else:
            rows.append(cols["row"][i])
            reps.append(rep)
            rep_rows.append(kept_row[rep])
    return pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "duplicate_of": pa.array(reps, pa.string()),
            "rep_row": pa.array(rep_rows, pa.int64()),
        }
    )


def _read_nodes(uri: str, prior: bool, row_groups: list[int] | None = None) -> pa.Table:
    t = read_parquet(uri) if row_groups is None else read_row_groups(uri, row_groups, ["key", "sha256", "phash"])
    if "download_reason" in t.column_names:  # an image part: the images that passed download and image
        t = t.filter(pc.and_(pc.is_null(t.column("download_reason")), pc.is_null(t.column("reason"))))
    if prior:  # carried images: (key, sha256, phash), kept ahead of every candidate
        t = t.select(["key", "sha256", "phash"])
        t = t.add_column(0, "row", pa.array([-1] * t.num_rows, pa.int64()))
    t = t.select(NODE_COLUMNS)
    return t.append_column("prior", pa.array([prior] * t.num_rows, pa.bool_()))


Group = list[tuple[str, bool, list[int] | None]]  # a map task's input: (file, carried?, its row groups or all)


def _read_group(group: Group) -> pa.Table:
    return pa.concat_tables([_read_nodes(*item) for item in group])


def _map_task(group: Group, out: str, buckets: int, max_hamming: int) -> dict:
    nodes = _read_group(group)
    write_bucketed(out, *scatter(nodes, buckets, max_hamming))
    return {"images": nodes.num_rows}


def _reduce_task(maps: list[str], bucket: int, repeated_uri: str, edges_uri: str, max_hamming: int) -> dict:
    repeated, edges = reduce_bucket(read_bucket(maps, bucket), max_hamming)
    write_parquet(repeated_uri, repeated)
    write_parquet(edges_uri, edges)
    return {"repeated": repeated.num_rows, "edges": edges.num_rows}


def _gather_task(group: Group, repeated: list[str], edges: list[str], out: str) -> dict:
    rep = pa.concat_tables([read_parquet(u) for u in repeated])
    near = pa.concat_tables([read_parquet(u) for u in edges])
    nodes = involved(_read_group(group), rep, near)
    write_parquet(out, nodes)
    return {"involved": nodes.num_rows}


def _resolve_task(gathered: list[str], edges: list[str], out: str, max_hamming: int) -> dict:
    nodes = pa.concat_tables([read_parquet(u) for u in gathered])
    near = pa.concat_tables([read_parquet(u) for u in edges])
    result = resolve(nodes, near, max_hamming)
    write_parquet(out, result)
    return {"duplicates": result.num_rows}


def dedup_parts(wd: WorkDir, parts: list[str], images: int, max_hamming: int, prior: str | None = None) -> str:
    """Run the four rounds of the module docstring over candidate part files (NODE_COLUMNS) and
    `prior` (a parquet file with key, sha256, phash of images kept before: a refresh's parent
    kept.parquet); returns the file of (row, duplicate_of)."""
    per_image = 2 + (max_hamming + 1 if max_hamming >= 0 else 0)  # map rows per image
    buckets = max(1, -(-images * per_image // ROWS_PER_BUCKET))
    groups = [[(parts[i], False, None) for i in r] for r in groups_of(len(parts), images, MAP_ROWS)]
    if prior is not None:  # a published kept table, read in row-group slices of about MAP_ROWS images
        groups += [[(prior, True, slice_)] for slice_ in row_group_slices(prior, MAP_ROWS)]
    base = wd.path("dedup")

    maps = [storage.join(base, "map", f"g{g:05d}.parquet") for g in range(len(groups))]
    run_tasks(
        wd,
        "dedup-map",
        {f"{g:05d}": (group, maps[g], buckets, max_hamming) for g, group in enumerate(groups)},
        _map_task,
        "dedup 1/4",
    )
    repeated = [storage.join(base, "repeated", f"b{b:05d}.parquet") for b in range(buckets)]
    edges = [storage.join(base, "edges", f"b{b:05d}.parquet") for b in range(buckets)]
    run_tasks(
        wd,
        "dedup-reduce",
        {f"{b:05d}": (maps, b, repeated[b], edges[b], max_hamming) for b in range(buckets)},
        _reduce_task,
        "dedup 2/4",
    )
    gathered = [storage.join(base, "involved", f"g{g:05d}.parquet") for g in range(len(groups))]
    run_tasks(
        wd,
        "dedup-gather",
        {f"{g:05d}": (group, repeated, edges, gathered[g]) for g, group in enumerate(groups)},
        _gather_task,
        "dedup 3/4",
    )
    out = storage.join(base, "duplicates.parquet")
    run_tasks(wd, "dedup-resolve", {"all": (gathered, edges, out, max_hamming)}, _resolve_task, "dedup 4/4")
    return out


def run_dedup(images: list[str], max_hamming: int, wd: WorkDir, prior: str | None = None) -> str:
    """`images`: the image parts (`pipelines.stages.image.PART`); their images that passed are the
    candidates. Returns the file of (row, duplicate_of, rep_row) of every duplicate (`dedup_parts`).

    `prior`: a parquet file of images already kept (key, sha256, phash hex: a refresh's parent
    kept.parquet, read by the map tasks in slices, never by the driver).
    """
    n = sum(num_rows(u) for u in images)
    if n == 0:
        out = wd.path("dedup", "duplicates.parquet")
        empty = {"row": pa.int64(), "duplicate_of": pa.string(), "rep_row": pa.int64()}
        write_parquet(out, pa.table({c: pa.array([], t) for c, t in empty.items()}))
        return out
    return dedup_parts(wd, images, n, max_hamming, prior)


def pass_dedup(images: pa.Table) -> pa.Table:
    """The dedup stage with `dedup.enabled: false`: every image passes (`reason` null)."""
    nulls = pa.nulls(images.num_rows, pa.string())
    return images.append_column("reason", nulls).append_column("duplicate_of", nulls)
