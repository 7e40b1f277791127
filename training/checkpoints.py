"""Find a trained model's checkpoint and load it (for `python -m training eval` and `export`).

A run writes Ray Train checkpoints `{checkpoint.storage}/{run.name}/checkpoint-{step:08d}/`,
each holding rank 0's `state.pt` (model, objectives, optimiser, ..., step, config; see
`training.train._save`) and every rank's RNG states. `resolve_checkpoint(spec)` accepts
what a person has at hand and names one checkpoint:

- a checkpoint directory (it holds `state.pt`);
- a run directory (it holds `checkpoint-*` directories): the one with the highest step
  wins; a directory without `state.pt` (a checkpoint still being written, or cut off by a
  killed worker) is skipped;
- a run name (or `RUN/checkpoint-N`) looked up under `storage`: by default the
  `./runs/checkpoints` the shipped configs use and `TrainConfig`'s own default, else the
  given local path or s3:// URI.

The checkpoint's training config comes from its own `state.pt` (`state["config"]`), so the
model is rebuilt exactly as it was trained, whatever the YAML says today. An s3://
checkpoint's `state.pt` is downloaded once per process into a temporary directory.
Anything a person can get wrong (no such path or run, no complete checkpoint, a file that
is not a lipforge checkpoint, a config or preset that no longer fits the weights) is a
`CheckpointNotFound` / `CheckpointError` naming what was tried and what exists.
"""

from __future__ import annotations

import atexit
import os
import pickle
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import ValidationError

from catalog import storage as stores
from catalog.errors import NotFound, UserError
from training.config import CheckpointConfig, TrainConfig
from training.model import build_model

STATE_FILE = "state.pt"  # training.train.STATE_FILE (not imported: that module starts Ray's imports)
CONFIGS_STORAGE = "./runs/checkpoints"  # `checkpoint.storage` of every config under configs/train/
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
_LISTED = 12  # names shown in an error before "..."


class CheckpointNotFound(NotFound):
    """No checkpoint at what was named; the message says what was tried and what exists."""


class CheckpointError(UserError, ValueError):
    """A checkpoint exists but cannot be used (not a lipforge checkpoint, config or preset mismatch)."""


@dataclass(frozen=True)
class RunCheckpoint:
    path: str  # the checkpoint directory holding state.pt (local path or s3:// URI)
    run: str  # run.name of the run that wrote it
    step: int
    config: TrainConfig  # the run's resolved training config, from state["config"]

    @property
    def state_file(self) -> str:
        return stores.join(self.path, STATE_FILE)


def default_storages() -> list[str]:
    """Where run names are looked up when no storage is given (the configs' and TrainConfig's default)."""
    return list(dict.fromkeys([CONFIGS_STORAGE, CheckpointConfig().storage]))


def resolve_checkpoint(spec: str, storage: str | None = None) -> RunCheckpoint:
    """The checkpoint named by `spec`: a checkpoint dir, a run dir (latest complete step) or a
    run name under `storage` (default: `default_storages()`); see the module docstring."""
    spec = str(spec)
    if os.path.basename(spec.rstrip("/")) == STATE_FILE and _exists(spec):
        spec = spec.rstrip("/")[: -len(STATE_FILE)].rstrip("/") or "."
    if _is_dir(spec):
        return _checkpoint_in(spec, spec)
    if _is_remote(spec):
        raise CheckpointNotFound(f"checkpoint {spec!r}: no such directory")
    if os.path.isabs(spec) or spec.startswith((".", "~")):
        raise CheckpointNotFound(f"checkpoint {spec!r}: no such directory")
    roots = [storage] if storage is not None else default_storages()
    tried, failed = [], []
    for root in roots:
        candidate = _join(root, spec)
        if not _is_dir(candidate):
            tried.append(f"{candidate} (missing)")
            continue
        try:
            return _checkpoint_in(candidate, spec)
        except CheckpointNotFound as exc:
            tried.append(f"{candidate} (no complete checkpoint)")
            failed.append(exc)
    if len(failed) == 1 and len(roots) == 1:
        raise failed[0]  # the one run directory there: say exactly what it lacks
    found = sorted({run for r in roots for run in runs_in(r)})
    listing = f"runs with checkpoints there: {_names(found)}" if found else "no run there has a checkpoint"
    raise CheckpointNotFound(f"checkpoint {spec!r}: no such directory or run (tried {', '.join(tried)}; {listing})")


def runs_in(root: str) -> list[str]:
    """Names of the run directories under `root` that hold at least one complete checkpoint."""
    return [name for name in _listdir(root) if _complete_checkpoints(_join(root, name))]


def checkpoints_in(run_dir: str) -> list[tuple[int, str]]:
    """(step, path) of each complete checkpoint (one holding state.pt) of a run directory, by step."""
    return _complete_checkpoints(run_dir)


def load_state(ckpt: RunCheckpoint) -> dict[str, Any]:
    """The whole saved state (model, objectives, optimizer, ..., step, config), tensors on the CPU."""
    return _torch_load(ckpt.state_file, mmap=False)


def load_model(ckpt: RunCheckpoint, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained model (dual encoder or single-stream), FLIP masking off, in eval mode on `device`."""
    return model_from_state(ckpt, load_state(ckpt), device)


def model_from_state(ckpt: RunCheckpoint, state: dict[str, Any], device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model of `ckpt` built from its config's family and preset and loaded (strictly) from `state`."""
    model_cfg = ckpt.config.model
    weights = state["model"]
    codes = weights["mim_head.weight"].shape[0] if "mim_head.weight" in weights else None
    try:  # mask_ratio 0: no patch dropout
        model = build_model(
            model_cfg.preset, embed_dim=model_cfg.embed_dim, family=model_cfg.family, codebook_size=codes
        )
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {ckpt.path}: {exc}") from None
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"checkpoint {ckpt.path}: its weights do not fit model.preset {model_cfg.preset!r} "
            f"(embed_dim {model_cfg.embed_dim}) as it is now: {first[1].strip() if len(first) > 1 else first[0]}"
        ) from None
    model.set_masking(False)
    return model.to(device).eval()


# ---------------------------------------------------------------- internals


def _checkpoint_in(directory: str, spec: str) -> RunCheckpoint:
    """`directory` as a checkpoint dir (holds state.pt) or a run dir (latest complete checkpoint)."""
    if _exists(_join(directory, STATE_FILE)):
        return _read_checkpoint(directory)
    complete = _complete_checkpoints(directory)
    if complete:
        return _read_checkpoint(complete[-1][1])
    incomplete = [n for n in _listdir(directory) if _CHECKPOINT_DIR.match(n)]
    if incomplete:
        raise CheckpointNotFound(
            f"checkpoint {spec!r}: run directory {directory} has no complete checkpoint "
            f"(no {STATE_FILE} in {_names(incomplete)})"
        )
    entries = _listdir(directory)
    runs = [n for n in entries if _complete_checkpoints(_join(directory, n))]
    if runs:
        raise CheckpointNotFound(
            f"checkpoint {spec!r}: {directory} is a checkpoint storage, not a run; name a run: {_names(runs)}"
        )
    raise CheckpointNotFound(
        f"checkpoint {spec!r}: {directory} holds neither {STATE_FILE} nor checkpoint-* directories"
        f" (it holds: {_names(entries) if entries else 'nothing'})"
    )


def _complete_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    out = []
    for name in _listdir(run_dir):
        m = _CHECKPOINT_DIR.match(name)
        if m and _exists(_join(run_dir, name, STATE_FILE)):
            out.append((int(m.group(1)), _join(run_dir, name)))
    return sorted(out)


def _read_checkpoint(directory: str) -> RunCheckpoint:
    state = _torch_load(_join(directory, STATE_FILE), mmap=True)  # only the config and step are read
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"{_join(directory, STATE_FILE)}: not a lipforge training checkpoint (no model/config)")
    try:
        config = TrainConfig.model_validate(state["config"])
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise CheckpointError(
            f"{_join(directory, STATE_FILE)}: its training config does not validate against the current "
            f"TrainConfig ({where}: {err['msg']})"
        ) from None
    m = _CHECKPOINT_DIR.match(os.path.basename(directory.rstrip("/")))
    step = int(state.get("step", int(m.group(1)) if m else 0))
    path = directory if _is_remote(directory) else os.path.abspath(directory)
    return RunCheckpoint(path=path, run=config.run.name, step=step, config=config)


def _torch_load(uri: str, mmap: bool) -> Any:
    path = _local_copy(uri) if _is_remote(uri) else uri
    errors = (RuntimeError, ValueError, EOFError, OSError, pickle.UnpicklingError)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except errors as exc:
        if mmap:  # a legacy (non-zip) torch file cannot be memory-mapped: read it whole
            try:
                return torch.load(path, map_location="cpu", weights_only=False)
            except errors:
                pass
        raise CheckpointError(f"{uri}: cannot be read as a torch checkpoint ({type(exc).__name__}: {exc})") from None


_downloads: dict[str, str] = {}
_download_dir: str | None = None


def _local_copy(uri: str) -> str:
    """A local copy of a remote file, downloaded once per process (removed at exit)."""
    global _download_dir
    if uri not in _downloads:
        if _download_dir is None:
            _download_dir = tempfile.mkdtemp(prefix="lipforge-checkpoint-")
            atexit.register(shutil.rmtree, _download_dir, True)
        local = os.path.join(_download_dir, f"{len(_downloads)}-{STATE_FILE}")
        fs, path = stores.filesystem(uri)
        try:
            fs.get_file(path, local)
        except Exception as exc:  # noqa: BLE001 - whatever the transport raises
            raise stores.StorageError(f"{uri}: cannot be downloaded ({type(exc).__name__}: {exc})") from None
        _downloads[uri] = local
    return _downloads[uri]


def _is_remote(uri: str) -> bool:
    return stores.is_remote(uri)


def _join(root: str, *parts: str) -> str:
    return stores.join(root, *parts)


def _is_dir(uri: str) -> bool:
    if not _is_remote(uri):
        return os.path.isdir(uri)
    stores.check_reachable(uri)  # an unreachable store is one StorageError line, not "not found"
    fs, path = stores.filesystem(uri)
    return fs.isdir(path)


def _exists(uri: str) -> bool:
    return os.path.isfile(uri) if not _is_remote(uri) else stores.exists(uri)


def _listdir(uri: str) -> list[str]:
    if not _is_remote(uri):
        return sorted(os.listdir(uri)) if os.path.isdir(uri) else []
    return stores.listdir(uri)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _LISTED else "")
