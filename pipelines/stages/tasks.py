"""Stream a Ray Data result and finish one task (a group of rows) as soon as all its rows are back.

A task's output file and then its completion marker are written when its last row
arrives, so a build killed mid-stage keeps every finished task (datatrove-style markers).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import pyarrow as pa
import pyarrow.compute as pc

from catalog.console import progress


def finish_tasks(
    ds,
    task_of: Callable[[pa.Table], pa.Array],
    expected: dict[Hashable, int],
    finish: Callable[[Hashable, pa.Table], None],
    desc: str,
) -> None:
    """Group `ds` rows by `task_of(batch)`; call `finish(task, rows)` once per task in `expected`."""
    buffers: dict[Hashable, list[pa.Table]] = {t: [] for t in expected}
    missing = dict(expected)
    with progress(total=sum(expected.values()), desc=desc, unit="row") as bar:
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            tasks = task_of(batch)
            for task in pc.unique(tasks).to_pylist():
                part = batch.filter(pc.equal(tasks, task))
                buffers[task].append(part)
                missing[task] -= part.num_rows
                if missing[task] == 0:
                    finish(task, pa.concat_tables(buffers.pop(task)))
            bar.update(batch.num_rows)
    unfinished = [t for t, n in missing.items() if n != 0]
    if unfinished:
        raise RuntimeError(f"{desc}: tasks {unfinished[:5]} did not get all their rows back")
