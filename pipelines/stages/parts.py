"""Work split into Ray tasks over part files, each finished task recorded by a completion marker.

The global steps of a build (the repeated-caption count, de-duplication, shard
assignment) run as map/reduce rounds over parquet part files in the work folder: a map
task reads one group of parts and writes ONE file holding its rows in hash-bucket order,
each bucket its own row groups (`write_bucketed`); a reduce task reads its bucket's row
groups from every map file (`read_bucket`: the footer's statistics say which). A round
writes maps + buckets files, never maps x buckets. The driver only passes file names and small
per-task summaries; no row of data passes through it. A task whose marker exists is not
run again (datatrove's `completions/`), so a killed build resumes each round where it
stopped. Outputs never depend on how many tasks run at once or on which node: every task
is a pure function of its input files. A task or actor lost with its node is run again
(Ray's task retries; an actor pool's lost item goes to another actor), so a node fault costs time, not rows.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog import storage
from catalog.console import progress
from catalog.parquet import read_parquet
from pipelines.stages.workdir import WorkDir

BUCKET = "_bucket"  # the bucket column of a `write_bucketed` file

ITEM_ATTEMPTS = 3  # actors an item may be sent to before its stage fails (each lost with its process or node)
POLL_S = 0.5  # seconds between a streaming actor pool's looks at its feed


def bucket_of(value: str, buckets: int) -> int:
    """A stable hash bucket of `value` in [0, buckets): the same on every machine and run."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "big") % buckets


def write_bucketed(uri: str, table: pa.Table, buckets: pa.Array | list[int]) -> None:
    """`table` in one parquet file, its rows in order of `buckets` (an int per row; rows of one
    bucket keep their order), each bucket's rows in row groups of their own, with the bucket in
    column `BUCKET`: `read_bucket` then reads one bucket's rows and skips the others' pages."""
    which = np.asarray(buckets, dtype=np.int32)
    order = np.argsort(which, kind="stable")
    which = which[order]
    table = table.take(pa.array(order)).append_column(BUCKET, pa.array(which, pa.int32()))
    starts = [0, *(np.flatnonzero(np.diff(which)) + 1).tolist()]
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema) as writer:
        if table.num_rows == 0:
            writer.write_table(table)
        for lo, hi in zip(starts, [*starts[1:], table.num_rows]):
            if hi > lo:
                writer.write_table(table.slice(lo, hi - lo))
    storage.write_bytes(uri, sink.getvalue().to_pybytes())


def read_bucket(uris: list[str], bucket: int, columns: list[str] | None = None) -> pa.Table:
    """Bucket `bucket`'s rows of each `write_bucketed` file in `uris`, concatenated in that order,
    without the bucket column (only the bucket's row groups are read)."""
    tables = []
    for uri in uris:
        t = read_parquet(
            uri, columns=None if columns is None else [*columns, BUCKET], filter=pc.field(BUCKET) == bucket
        )
        tables.append(t.drop_columns([BUCKET]))
    return pa.concat_tables(tables)


def groups_of(n_parts: int, rows: int, max_rows: int) -> list[range]:
    """Consecutive part indices in groups of about `max_rows` rows (from the mean part size):
    one map/apply task per group keeps a round's reads at groups x buckets, not parts x buckets."""
    size = max(1, max_rows * n_parts // max(1, rows))
    return [range(i, min(i + size, n_parts)) for i in range(0, n_parts, size)]


def run_tasks(
    wd: WorkDir,
    name: str,
    tasks: dict[Hashable, tuple],
    fn: Callable[..., Any],
    desc: str,
    max_in_flight: int | None = None,
) -> dict[Hashable, Any]:
    """Run `fn(*args)` as a Ray task for each `tasks[id]` whose marker `{name}-{id}` is missing;
    the marker records what `fn` returned (a small JSON value). Returns every task's recorded value.

    At most `max_in_flight` tasks are submitted at a time (default: twice the cluster's CPUs),
    so a round over many parts never floods the object store with pending work.
    """
    import ray

    ids = list(tasks)
    pending = [t for t in ids if not wd.done(f"{name}-{t}")]
    if pending:
        remote = ray.remote(fn)
        limit = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        running: dict[Any, Hashable] = {}
        queue = list(pending)
        with progress(total=len(pending), desc=desc, unit="task") as bar:
            while queue or running:
                while queue and len(running) < limit:
                    t = queue.pop(0)
                    running[remote.remote(*tasks[t])] = t
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    t = running.pop(ref)
                    wd.mark(f"{name}-{t}", ray.get(ref))
                    bar.update(1)
    return {t: wd.marker(f"{name}-{t}") for t in ids}


def run_actors(
    actor_class: type,
    args: tuple,
    items: list[dict[str, Any]],
    workers: int,
    on_done: Callable[[dict[str, Any]], None],
    feed: Callable[[], tuple[list[dict[str, Any]], bool]] | None = None,
    num_cpus: float = 1,
) -> None:
    """Call a pool of at most `workers` actors of `actor_class(*args)` once per item (each actor
    loads its models once and takes the next item as it finishes one); `on_done(result)` as each
    call returns. Only the items (file names) and the small results pass through the driver.

    `feed` streams more items in while another job produces them (the download's raw shards):
    polled every `POLL_S` while the pool waits, it returns (the items ready since its last
    answer, whether more may come), and the pool ends once it says no more and every item is
    done. With a feed all `workers` actors start at once, loading their models while the
    producer runs. `num_cpus` is each actor's CPU reservation: 0 for a pool that runs beside
    tasks holding the CPUs while they wait on the network (its actors are then spread over the nodes).

    An actor that dies (its process or its node lost) leaves the pool and its item goes back to
    the queue for the others: every call rewrites its own part file from its input file, so
    the result is the same. A new actor is started only when none is left (while the others
    live, one could wait for a CPU that they hold). An item that has killed `ITEM_ATTEMPTS`
    actors fails the stage, naming it.
    """
    import ray
    from ray.exceptions import ActorDiedError, ActorUnavailableError

    items = list(items)
    more = feed is not None
    if not items and not more:
        return
    options: dict[str, Any] = {"num_cpus": num_cpus}
    if num_cpus == 0:
        options["scheduling_strategy"] = "SPREAD"
    remote = ray.remote(**options)(actor_class)
    idle = [remote.remote(*args) for _ in range(max(1, workers if more else min(workers, len(items))))]
    queue = list(range(len(items)))
    attempts = [0] * len(items)
    running: dict[Any, tuple[Any, int]] = {}
    while queue or running or more:
        if more:
            new, more = feed()  # type: ignore[misc]
            queue += range(len(items), len(items) + len(new))
            items += new
            attempts += [0] * len(new)
        if not queue and not running:
            time.sleep(POLL_S)  # the feed is still open
            continue
        if not idle and not running:
            idle.append(remote.remote(*args))
        while queue and idle:
            actor, i = idle.pop(0), queue.pop(0)
            attempts[i] += 1
            running[actor.__call__.remote(items[i])] = (actor, i)
        ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S if more else None)
        if not ready:
            continue
        actor, i = running.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except (ActorDiedError, ActorUnavailableError) as e:
            if attempts[i] >= ITEM_ATTEMPTS:
                raise RuntimeError(f"{actor_class.__name__}: {items[i]} failed on {attempts[i]} actors: {e}") from e
            queue.insert(0, i)
            ray.kill(actor, no_restart=True)
            continue
        idle.append(actor)
        on_done(result)
