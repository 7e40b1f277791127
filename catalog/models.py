"""Model lineage: every training run and evaluation, recorded beside the datasets it used.

Layout (docs/formats.md, "Model runs"):

    {root}/.runs/{run}/run.json                                  the run's record (merged by record_run)
    {root}/.runs/{run}/evals.jsonl                               one JSON line per evaluation, in recording order
    {root}/.runs/{run}/evals/step-{step:08d}/{set_slug}/{name}   files of an evaluation (PNG figures)

`.runs` is a dot-directory, so the dataset scan (`catalog.index`) and the web app's `/files`
route never see it. `set_slug` is the eval set's ref with `@` → `-v` (`demo-eval@1` →
`demo-eval-v1`). Every write goes through `catalog.storage` (atomic: temp + rename locally,
whole-object upload on S3), files first, then `evals.jsonl`, then `run.json`, so a record
never names a file that is not there. A run has one writer (the training job's rank 0);
`evals.jsonl` is rewritten whole on every append (read-modify-write), which is fine for
the tens to thousands of evaluations a run records.

Datasets a run used are keyed by `NAME@N` (`NAME@latest` and `NAME` are resolved when
recorded). Each entry has `roles`, the sorted list of every role the set played (`"train"`,
`"eval"`), and `role`, the primary one (`"train"` when it was trained on at all, else
`"eval"`), so a set that was trained on and evaluated keeps both.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import warnings
from collections.abc import Mapping
from typing import Any

from catalog import storage
from catalog.errors import NotFound, UserError
from catalog.versions import parse_ref, resolve

RUNS_DIR = ".runs"
RUN_FILE = "run.json"
EVALS_FILE = "evals.jsonl"
RUN_FORMAT = "lipforge.run/1"
STATUSES = ("running", "finished", "failed")
ROLES = ("train", "eval")
_RUN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RESERVED = ("run", "format", "created", "updated", "evals")
_HEADLINE_TAILS = ("top1", "acc")


class RunError(UserError, ValueError):
    """A run or evaluation cannot be recorded or read (bad name, field or file); the message says which."""


class RunNotFound(NotFound):
    """No run of that name is recorded under a root; the message lists the runs that are."""


class EvalFileNotFound(NotFound):
    """A run recorded no evaluation file at that path; the message says which run and path."""


# -- names and places ---------------------------------------------------------------


def check_run_name(run: str) -> str:
    if not isinstance(run, str) or not _RUN.fullmatch(run):
        raise RunError(
            f"run name {run!r}: use letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(at most 128, e.g. clip-demo-2024)"
        )
    return run


def runs_uri(root: str) -> str:
    return storage.join(root, RUNS_DIR)


def run_uri(root: str, run: str) -> str:
    """`{root}/.runs/{run}` (the run name is checked first); eval file paths in evals.jsonl are relative to it."""
    return storage.join(runs_uri(root), check_run_name(run))


def set_slug(ref: str) -> str:
    """The directory name of an eval set's files: `demo-eval@1` → `demo-eval-v1`."""
    return ref.replace("@", "-v")


def normalise_ref(root: str, ref: str) -> str:
    """`NAME@N` as recorded: `NAME@vN` → `NAME@N`; `NAME@latest` and `NAME` resolve to the newest
    complete version under `root` (VersionNotFound when there is none)."""
    if not isinstance(ref, str):
        raise RunError(f"dataset reference {ref!r}: expected a string NAME@N")
    name, ver = parse_ref(ref)
    if not _PART.fullmatch(name):
        raise RunError(f"dataset reference {ref!r}: the name must be letters, digits, '.', '_' or '-'")
    if ver == "latest":
        name, version = resolve(root, f"{name}@latest")
        return f"{name}@{version}"
    return f"{name}@{int(ver)}"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# -- reading ------------------------------------------------------------------------


def run_names(root: str) -> list[str]:
    """Names of the runs recorded under `root` (those with a run.json), sorted."""
    base = runs_uri(root)
    return [n for n in storage.listdir(base) if _RUN.fullmatch(n) and storage.exists(storage.join(base, n, RUN_FILE))]


def run_exists(root: str, run: str) -> bool:
    return (
        isinstance(run, str)
        and bool(_RUN.fullmatch(run))
        and storage.exists(storage.join(run_uri(root, run), RUN_FILE))
    )


def _not_found(root: str, run: str) -> RunNotFound:
    known = run_names(root)
    have = f"known runs: {', '.join(known)}" if known else "no runs are recorded there"
    return RunNotFound(f"no run {run!r} under {root} ({have})")


def _read_record(root: str, run: str) -> dict[str, Any] | None:
    uri = storage.join(run_uri(root, run), RUN_FILE)
    if not storage.exists(uri):
        return None
    try:
        record = storage.read_json(uri)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{uri}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise RunError(f"{uri}: expected an object, found {type(record).__name__}")
    return record


def _read_evals(root: str, run: str) -> list[dict[str, Any]]:
    uri = storage.join(run_uri(root, run), EVALS_FILE)
    if not storage.exists(uri):
        return []
    lines = []
    for n, line in enumerate(storage.read_bytes(uri).decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise RunError(f"{uri} line {n}: not valid JSON ({exc})") from None
    return lines


def load_run(root: str, run: str) -> dict[str, Any]:
    """run.json plus `"evals"`: every evaluation line in recording order; RunNotFound lists the known runs."""
    check_run_name(run)
    record = _read_record(root, run)
    if record is None:
        raise _not_found(root, run)
    return {**record, "evals": _read_evals(root, run)}


def latest_evals(evals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{set: its latest evaluation line} (highest step; of equal steps the one recorded last)."""
    out: dict[str, dict[str, Any]] = {}
    for line in sorted(evals, key=lambda e: e.get("step", 0)):
        out[line.get("set", "")] = line
    return out


def latest_metrics(evals: list[dict[str, Any]]) -> dict[str, float]:
    """{metric: its latest value} over all evaluations (by step, then recording order; null values skipped)."""
    out: dict[str, float] = {}
    for line in sorted(evals, key=lambda e: e.get("step", 0)):
        for name, value in (line.get("metrics") or {}).items():
            if value is not None:
                out[name] = value
    return out


def headline(metrics: Mapping[str, Any], limit: int = 4) -> list[str]:
    """The metric names worth a glance: top-1 accuracies, recall@1 and `acc`; else the first few by name."""
    names = sorted(metrics)
    picked = [n for n in names if n.rsplit("/", 1)[-1] in _HEADLINE_TAILS or n.rsplit("/", 1)[-1].endswith("_r1")]
    return (picked or names)[:limit]


def roles_of(entry: Mapping[str, Any]) -> list[str]:
    """The roles a dataset entry of run.json records (`roles`, or the single `role` of a hand-written one)."""
    roles = entry.get("roles")
    if roles is None:
        roles = entry.get("role")
    if isinstance(roles, str):
        roles = [roles]
    return sorted(set(roles or []))


def summarise(record: dict[str, Any], evals: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's summary (what `list_runs` returns per run)."""
    datasets = record.get("datasets") or {}
    trained = [ref for ref, e in datasets.items() if "train" in roles_of(e)]
    evaluated = [ref for ref, e in datasets.items() if "eval" in roles_of(e)]
    latest = {
        name: {"step": line.get("step"), "metrics": line.get("metrics") or {}, "chance": line.get("chance") or {}}
        for name, line in latest_evals(evals).items()
    }
    return {
        "run": record.get("run"),
        "status": record.get("status"),
        "step": record.get("step"),
        "steps": record.get("steps"),
        "created": record.get("created"),
        "updated": record.get("updated"),
        "code_version": record.get("code_version"),
        "datasets": datasets,
        "trained": sorted(trained),
        "evaluated": sorted(evaluated),
        "evals": len(evals),
        "metrics": latest_metrics(evals),
        "latest": latest,
    }


def list_runs(root: str) -> list[dict[str, Any]]:
    """One summary per recorded run, oldest first (by `created`, then name): run, status, step,
    steps, created, updated, datasets, trained, evaluated, evals (count), metrics (the latest
    value of each), latest ({set: {step, metrics, chance}} of each set's latest evaluation).
    A run whose record cannot be read is skipped with a warning naming the file."""
    out = []
    for run in run_names(root):
        try:
            record = _read_record(root, run)
            evals = _read_evals(root, run)
        except RunError as exc:
            warnings.warn(f"skipped run {run!r}: {exc}", stacklevel=2)
            continue
        if record is not None:
            out.append(summarise({**record, "run": run}, evals))
    return sorted(out, key=lambda s: (str(s.get("created") or ""), s["run"]))


def runs_for_dataset(root: str, ref: str) -> dict[str, list[dict[str, Any]]]:
    """{"trained": [run summaries], "evaluated": [...]} of the runs that used `ref`
    (`NAME@N`, `NAME@latest` or `NAME`); a run that did both is in both lists."""
    wanted = normalise_ref(root, ref)
    found: dict[str, list[dict[str, Any]]] = {"trained": [], "evaluated": []}
    for summary in list_runs(root):
        if wanted in summary["trained"]:
            found["trained"].append(summary)
        if wanted in summary["evaluated"]:
            found["evaluated"].append(summary)
    return found


def eval_file(root: str, run: str, relpath: str) -> bytes:
    """The bytes of an evaluation file, by its path relative to the run directory as listed in
    evals.jsonl (`evals/step-00000100/demo-eval-v1/patches.png`). Only recorded paths are
    served, so nothing outside the run's evaluation files can be read through it."""
    evals = load_run(root, run)["evals"]
    recorded = {p for line in evals for p in (line.get("files") or [])}
    if relpath not in recorded:
        raise EvalFileNotFound(f"run {run!r} recorded no evaluation file {relpath!r}")
    uri = storage.join(run_uri(root, run), relpath)
    if not storage.exists(uri):
        raise EvalFileNotFound(f"run {run!r}: evaluation file {relpath!r} is missing at {uri}")
    return storage.read_bytes(uri)


# -- writing ------------------------------------------------------------------------


def _json_ready(field: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise RunError(f"run field {field!r}: not JSON-serialisable ({exc})") from None


def _number(field: str, name: str, value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy and torch scalars
        except (TypeError, ValueError):
            raise RunError(f"{field} {name!r}: expected a number, got {value!r}") from None
    value = float(value)
    return value if math.isfinite(value) else None


def _step(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if float(value) != int(value):
                raise ValueError
            value = int(value)
        except (TypeError, ValueError):
            raise RunError(f"{field}: expected a whole step number, got {value!r}") from None
    if value < 0:
        raise RunError(f"{field}: expected a step >= 0, got {value}")
    return int(value)


def _merge_dataset(ref: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(new, Mapping):
        raise RunError(f"datasets[{ref!r}]: expected an object such as {{'role': 'train', 'weight': 1.0}}")
    roles = set(roles_of(old)) | set(roles_of(new))
    bad = sorted(roles - set(ROLES))
    if bad:
        raise RunError(f"datasets[{ref!r}]: role {bad[0]!r} is not one of {', '.join(ROLES)}")
    merged = {**old, **{k: v for k, v in new.items() if k not in ("role", "roles")}}
    merged["roles"] = sorted(roles)
    merged["role"] = "train" if "train" in roles else (merged["roles"][0] if roles else None)
    if merged["role"] is None:
        del merged["role"]
    return merged


def _merge_checkpoints(old: list[dict[str, Any]], new: Any) -> list[dict[str, Any]]:
    if not isinstance(new, list):
        raise RunError("checkpoints: expected a list of {'step': N, 'path': ...}")
    by_step = {int(c["step"]): dict(c) for c in old if isinstance(c, Mapping) and "step" in c}
    for i, c in enumerate(new):
        if not isinstance(c, Mapping) or "step" not in c:
            raise RunError(f"checkpoints[{i}]: expected {{'step': N, 'path': ...}}, got {c!r}")
        step = _step(f"checkpoints[{i}].step", c["step"])
        by_step[step] = {**by_step.get(step, {}), **c, "step": step}
    return [by_step[s] for s in sorted(by_step)]


def _merge(root: str, record: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in fields.items():
        if key in _RESERVED:
            raise RunError(f"run field {key!r} is set by the catalog and cannot be given")
        if key == "checkpoints":
            record["checkpoints"] = _merge_checkpoints(record.get("checkpoints") or [], _json_ready(key, value))
        elif key == "datasets":
            if not isinstance(value, Mapping):
                raise RunError("datasets: expected {'NAME@N': {'role': 'train', ...}}")
            datasets = dict(record.get("datasets") or {})
            for ref, entry in value.items():
                ref = normalise_ref(root, ref)
                datasets[ref] = _merge_dataset(ref, datasets.get(ref) or {}, _json_ready(f"datasets[{ref!r}]", entry))
            record["datasets"] = datasets
        elif key == "status":
            if value not in STATUSES:
                raise RunError(f"status {value!r}: expected one of {', '.join(STATUSES)}")
            record[key] = value
        elif key in ("step", "steps"):
            record[key] = None if value is None else _step(key, value)
        elif key in ("config", "summary", "objectives") and value is not None and not isinstance(value, Mapping):
            raise RunError(f"{key}: expected an object, got {type(value).__name__}")
        else:
            record[key] = _json_ready(key, value)
    return record


def record_run(root: str, run: str, **fields: Any) -> dict[str, Any]:
    """Create or update `{root}/.runs/{run}/run.json`; return the record as written.

    Merging: `checkpoints` ([{"step", "path", ...}]) is a union keyed by step (a step given
    again updates its entry); `datasets` ({"NAME@N": {...}}) is merged per ref (dict update,
    roles united, see the module docstring); every other field replaces the stored value.
    Known fields: config, code_version, status ("running" | "finished" | "failed"), started,
    finished, steps, step, objectives, datasets, checkpoints, summary, log_dir. The catalog
    sets run, format, created (first record) and updated (every record).
    """
    check_run_name(run)
    record = _read_record(root, run) or {}
    now = _now()
    record = _merge(root, dict(record), fields)
    record["run"] = run
    record["format"] = RUN_FORMAT
    record.setdefault("created", now)
    record["updated"] = now
    storage.write_json(storage.join(run_uri(root, run), RUN_FILE), record)
    return record


def record_eval(
    root: str,
    run: str,
    step: int,
    eval_set: str,
    metrics: Mapping[str, float],
    chance: Mapping[str, float] | None = None,
    files: Mapping[str, bytes] | None = None,
    checkpoint: Any = None,
) -> dict[str, Any]:
    """Record one evaluation of `run` at `step` on `eval_set` (`NAME@N`); return its evals.jsonl line.

    Writes `files` ({name: bytes}, e.g. PNG figures) under `evals/step-{step:08d}/{set_slug}/`,
    appends {"step", "set", "checkpoint", "metrics", "chance", "files", "created"} to
    evals.jsonl (`files`: paths relative to the run directory) and records the set in
    run.json's datasets with role "eval" (creating the run when it does not exist yet).
    Metric values are floats; a non-finite one is stored as null.
    """
    check_run_name(run)
    step = _step("step", step)
    ref = normalise_ref(root, eval_set)
    if not isinstance(metrics, Mapping):
        raise RunError(f"metrics: expected {{name: value}}, got {type(metrics).__name__}")
    clean_metrics = {str(k): _number("metric", str(k), v) for k, v in metrics.items()}
    clean_chance = {str(k): _number("chance", str(k), v) for k, v in (chance or {}).items()}
    base = run_uri(root, run)
    folder = f"evals/step-{step:08d}/{set_slug(ref)}"
    for name, data in (files or {}).items():  # check them all before writing any
        if not isinstance(name, str) or not _PART.fullmatch(name):
            raise RunError(f"evaluation file name {name!r}: use letters, digits, '.', '_' or '-' (no '/')")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise RunError(f"evaluation file {name!r}: expected bytes, got {type(data).__name__}")
    written = []
    for name, data in (files or {}).items():
        rel = f"{folder}/{name}"
        storage.write_bytes(storage.join(base, rel), bytes(data))
        written.append(rel)
    line = {
        "step": step,
        "set": ref,
        "checkpoint": _json_ready("checkpoint", checkpoint),
        "metrics": clean_metrics,
        "chance": clean_chance,
        "files": written,
        "created": _now(),
    }
    uri = storage.join(base, EVALS_FILE)
    old = storage.read_bytes(uri) if storage.exists(uri) else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    storage.write_bytes(uri, old + (json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
    record_run(root, run, datasets={ref: {"role": "eval"}})
    return line
