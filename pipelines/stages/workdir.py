"""Where a build writes: the version it publishes and its work-in-progress folder with task markers.

`{root}/{dataset}/v{N}/` is published (manifest.json last); `{root}/{dataset}/.work/v{N}/`
holds raw download shards and per-task completion markers (after datatrove's
`completions/` folder): a task whose marker exists is never redone. N is the last
complete version + 1, so a killed build re-run with the same config resumes its own
unfinished version; with a different config the stale work folder is discarded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog import storage
from catalog.versions import version_numbers


@dataclass(frozen=True)
class WorkDir:
    dataset_uri: str
    version: int

    @property
    def out(self) -> str:
        """The published version folder."""
        return storage.join(self.dataset_uri, f"v{self.version}")

    @property
    def work(self) -> str:
        return storage.join(self.dataset_uri, ".work", f"v{self.version}")

    def path(self, *parts: str) -> str:
        return storage.join(self.work, *parts)

    def done(self, task: str) -> bool:
        return storage.exists(self.path("completions", task))

    def mark(self, task: str, info: Any = None) -> None:
        storage.write_json(self.path("completions", task), info if info is not None else {})

    def marker(self, task: str) -> Any:
        return storage.read_json(self.path("completions", task))


def open_workdir(root: str, dataset: str, config: dict[str, Any], log=print) -> WorkDir:
    """The version to build: resume `.work/v{N}` when its config matches, else start it fresh."""
    versions = version_numbers(root, dataset)
    wd = WorkDir(storage.join(root, dataset), (versions[-1] if versions else 0) + 1)
    cfg_uri = wd.path("config.json")
    if storage.exists(cfg_uri):
        if storage.read_json(cfg_uri) == config:
            log(f"build: resuming unfinished version v{wd.version} ({wd.work})")
            return wd
        log(f"build: {wd.work} was started with another config; discarding it")
        storage.remove(wd.work, recursive=True)
    storage.remove(wd.work, recursive=True)
    storage.remove(wd.out, recursive=True)  # leftovers of a killed build with another config
    storage.write_json(cfg_uri, config)
    return wd
