"""Ray Train pretraining: `launch` starts a TorchTrainer; `worker_loop` runs on each worker.

Checkpoints (every `checkpoint.every_steps` and at the end) go through Ray Train to local or
s3:// storage: rank 0 writes the model, objectives (and their state: queues and their
pointers), the momentum model (SIMLA; α follows the saved step), optimiser, scheduler,
grad scaler and step; every rank writes its RNG states. The data position is the step (one
batch per step per worker), from which the stream resumes exactly. Re-running the same
command (same run.name and storage) resumes from the latest checkpoint; after a worker
failure Ray restarts the group (FailureConfig.max_failures) and it resumes the same way.
`ray.train.report` only uploads a checkpoint: Ray Train registers it (the one a restarted
group gets from `get_checkpoint()`) when its controller next polls the workers, so after each
report the loop waits until it is registered; a worker killed at any later step thus resumes
from the newest checkpoint, never from an older one with the newer left unregistered.

Before Ray starts, `launch` checks what a person can get wrong: the dataset version (and the
eval one) exist, and they have every batch member the configured objectives read; such
errors are `catalog.errors.UserError`s, printed as one line by the CLI runner. While the
run goes, Ray's and Ray Train's output goes to `{run.log_dir}/{run.name}/ray.log` (unless
`--verbose`), and the console shows one progress bar drawn by the driver from rank 0's
metrics.jsonl (`training.logs.MetricsBar`).
"""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
import time
from typing import Any

import numpy as np
import pyarrow.fs
import ray
import ray.exceptions
import ray.train
import ray.train.torch
import torch

from catalog import console, models, storage, versions
from catalog.errors import UserError
from catalog.manifest import modality_of
from catalog.publish import code_version
from catalog.raysession import ray_session
from training.config import TrainConfig
from training.data import check_members, resolve_shards
from training.logs import MetricsBar, RunLog
from training.mixture import Mixture, Source
from training.objectives import OBJECTIVES
from training.optim import build_optimizer, build_schedule, peak_lr
from training.trainee import AMP_DTYPES, Trainee, build_trainee, run_batch_spec

STATE_FILE = "state.pt"
LOG_FILE = "ray.log"
_PG_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"


class RunFailed(UserError, RuntimeError):
    """The Ray Train run failed; the message says why in one line and names the full log."""


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Interval:
    """Per-objective loss (kept on the device: no sync per step) and forward time summed over
    the steps since the last log line, so an objective that ran on some of them (a unimodal
    source of a mixture) is logged with the mean over those."""

    def __init__(self) -> None:
        self.sums: dict[str, list] = {}

    def add(self, losses: dict[str, torch.Tensor], times_ms: dict[str, float]) -> None:
        for name in [*losses, "encode"]:
            entry = self.sums.setdefault(name, [0.0, 0.0, 0])
            if name in losses:
                entry[0] = entry[0] + losses[name].detach()
            entry[1] += times_ms.get(name, 0.0)
            entry[2] += 1

    def means(self) -> dict[str, tuple[float, float]]:
        out = {n: (float(loss) / count, ms / count) for n, (loss, ms, count) in self.sums.items() if count}
        self.sums = {}
        return out


def run_eval(cfg: TrainConfig, model: torch.nn.Module, step: int, device: torch.device, log: RunLog | None) -> dict:
    """Evaluate on `eval.sets`, log the metrics (`eval/SET/NAME`) and record them (with the
    word-patch drawings) in the catalog under the run; returns {"step", "sets": {ref: {...}}}."""
    from training.eval.runner import evaluate

    out: dict[str, Any] = {"step": step, "sets": {}}
    for r in evaluate(model, cfg, device):
        entry = models.record_eval(cfg.root, cfg.run.name, step, r.ref, r.metrics, chance=r.chance, files=r.files)
        run_uri = models.run_uri(cfg.root, cfg.run.name)
        files = [storage.join(run_uri, f) for f in entry.get("files", [])]
        out["sets"][r.ref] = {"metrics": r.metrics, "chance": r.chance, "notes": r.notes, "files": files}
        if log is not None:
            log.step(step, {f"eval/{r.ref}/{k}": v for k, v in r.metrics.items()})
    return out


def run_sources(cfg: TrainConfig, image_size: int) -> list[Source]:
    """The run's dataset versions (one, or the mixture), each with what its batches carry."""
    out = []
    for ref, weight in cfg.sources().items():
        manifest, urls = resolve_shards(cfg.root, ref)
        modality = modality_of(manifest)
        out.append(
            Source(
                ref=f"{manifest['dataset']}@{manifest['version']}",
                weight=weight,
                urls=tuple(urls),
                samples=cfg.data.samples_per_epoch or manifest["samples"],
                spec=run_batch_spec(cfg, image_size, modality),
            )
        )
    return out


def visual_tokenizer_for(cfg: TrainConfig, manifests: dict[str, dict[str, Any]]) -> torch.nn.Module | None:
    """The visual tokenizer the objectives need (flava_mim), or None: the configured one, else
    the codebook recorded for the run's image-only source (or its first source)."""
    wanting = [n for n in cfg.objectives if getattr(OBJECTIVES.get(n), "uses_visual_tokenizer", False)]
    if not wanting:
        return None
    from training.visual_tokenizer import load_visual_tokenizer

    spec = next((cfg.objective_options(n).tokenizer for n in wanting if cfg.objective_options(n).tokenizer), None)
    if spec is None:
        refs = list(manifests)
        spec = next((r for r in refs if modality_of(manifests[r]) == "image"), refs[0])
    return load_visual_tokenizer(cfg.root, spec)


def worker_loop(config: dict[str, Any]) -> None:
    cfg = TrainConfig.model_validate(config["train"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    manifests = {ref: versions.load_manifest(cfg.root, ref) for ref in cfg.sources()}
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    trainee = build_trainee(cfg, visual_tokenizer_for(cfg, manifests)).to(device)
    global_batch = cfg.batch_size * world
    optimizer = build_optimizer({"trainee": trainee}, cfg.optim, peak_lr(cfg.optim, global_batch))
    scheduler = build_schedule(optimizer, cfg.schedule, cfg.steps)
    amp_dtype = AMP_DTYPES[cfg.precision]
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")

    step, history, saved_data = 0, {"first_loss": None}, None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = torch.load(os.path.join(d, STATE_FILE), map_location=device, weights_only=False)
            trainee.model.load_state_dict(state["model"])
            trainee.objectives.load_state_dict(state["objectives"])
            if trainee.momentum is not None:
                trainee.momentum.load_state_dict(state["momentum"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            step, history, saved_data = state["step"], state["history"], state.get("data")
            rng_file = os.path.join(d, f"rng-rank{rank}.pt")
            if os.path.exists(rng_file):
                set_rng_state(torch.load(rng_file, weights_only=False))
    else:
        random.seed(cfg.seed + rank)
        np.random.seed(cfg.seed + rank)
        torch.manual_seed(cfg.seed + rank)  # per-rank masking / dropout randomness

    sources = run_sources(cfg, trainee.model.image_size)
    model: torch.nn.Module = trainee
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            trainee,
            device_ids=[device.index] if device.type == "cuda" else None,
            # unimodal batches leave a tower (and the other modality's objectives) unused; a
            # single-stream model has heads (ITM, MLM, MIM, PSL) only some objectives train
            find_unused_parameters=len({s.modality for s in sources}) > 1 or trainee.family == "single_stream",
            broadcast_buffers=False,  # queues are filled identically everywhere (all-gathered)
        )
    mixture = Mixture(
        sources,
        cfg.batch_size,
        rank=rank,
        world=world,
        num_workers=cfg.data.num_workers,
        seed=cfg.seed,
        start_step=step,
        shuffle_buffer=cfg.data.shuffle_buffer,
    )
    mixture.check_resumed(saved_data)
    log = RunLog(config["log_dir"]) if rank == 0 else None
    start_step, t_start, t_last, last_logged = step, time.perf_counter(), time.perf_counter(), step
    trainee.train()
    interval = Interval()
    batches = iter(mixture)
    while step < cfg.steps:
        source, batch = next(batches)  # the mixture's state stays that of `step` at every save
        trainee.model.set_masking(step < cfg.steps - cfg.model.unmasked_steps)
        trainee.set_step(step, mixture.batches_per_epoch)  # SIMLA's distillation weight follows the step
        batch = {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            total, losses = model(batch)
        scaler.scale(total).backward()
        if cfg.optim.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trainee.parameters(), cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        step += 1
        interval.add(losses, trainee.times_ms)
        if step % cfg.run.log_every == 0 or step == cfg.steps or history["first_loss"] is None:
            now = time.perf_counter()
            metrics = {
                "loss/total": total.item(),
                "lr": lr,
                "epoch": step // mixture.batches_per_epoch,
                "samples_per_s": (step - last_logged) * global_batch / max(now - t_last, 1e-9),
                "step_ms": (now - t_last) * 1e3 / max(1, step - last_logged),
                "source": source.ref,
            }
            ran = interval.means()  # each objective over the steps it ran since the last log line
            for name, (loss, ms) in ran.items():
                objective = trainee.objectives[name] if name in trainee.objectives else None
                if objective is None:  # the shared encoding's time
                    metrics[f"time_ms/{name}"] = ms
                    continue
                metrics[f"loss/{name}"] = loss
                metrics[f"weight/{name}"] = trainee.weights[name]
                metrics[f"time_ms/{name}"] = ms
                if objective.log_scale is not None:
                    metrics[f"temperature/{name}"] = 1.0 / objective.logit_scale().item()
            metrics.update(trainee.log_metrics())
            if trainee.momentum is not None:
                metrics["alpha"] = trainee.alpha()
            for ref, n in mixture.state().positions.items():
                metrics[f"samples/{ref}"] = n * global_batch
            t_last, last_logged = now, step
            if history["first_loss"] is None:
                history["first_loss"] = metrics["loss/total"]
            history["last_loss"] = metrics["loss/total"]
            logged = {n: metrics[f"loss/{n}"] for n in ran if f"loss/{n}" in metrics}
            history.setdefault("losses", {}).update(logged)
            history.setdefault("first_losses", {})
            for n, value in logged.items():
                history["first_losses"].setdefault(n, value)
            if log is not None:
                log.step(step, metrics)
        if cfg.eval.sets and cfg.eval.every_steps and step % cfg.eval.every_steps == 0 and step < cfg.steps:
            if rank == 0:  # the other ranks wait for it at the next step's gradient all-reduce
                history.setdefault("eval", {}).update(run_eval(cfg, trainee.model, step, device, log))
        if step % cfg.checkpoint.every_steps == 0 and step < cfg.steps:
            _save(cfg, trainee, optimizer, scheduler, scaler, step, history, rank, world, mixture)
    summary = {
        "step": step,
        "steps_this_attempt": step - start_step,
        "first_loss": history["first_loss"],
        "last_loss": history.get("last_loss"),
        "first_losses": history.get("first_losses", {}),
        "last_losses": history.get("losses", {}),
        "samples_per_source": {ref: n * global_batch for ref, n in mixture.state().positions.items()},
        "wall_s_this_attempt": time.perf_counter() - t_start,
        "samples_per_s": (step - start_step) * global_batch / max(time.perf_counter() - t_start, 1e-9),
    }
    summary.update({k: v for k, v in trainee.log_metrics().items() if k.startswith("collapse")})
    if cfg.eval.sets and rank == 0:
        done = history.get("eval", {})
        summary["eval"] = done if done.get("step") == step else run_eval(cfg, trainee.model, step, device, log)
    if log is not None:
        log.close()
    if step > start_step:  # the final checkpoint carries the summary (Result.metrics)
        _save(cfg, trainee, optimizer, scheduler, scaler, step, history, rank, world, mixture, {"summary": summary})
    else:  # an already finished run: nothing new to save
        ray.train.report({})


def _save(
    cfg,
    trainee: Trainee,
    optimizer,
    scheduler,
    scaler,
    step: int,
    history: dict,
    rank: int,
    world: int,
    mixture: Mixture,
    metrics: dict[str, Any] | None = None,
) -> None:
    with tempfile.TemporaryDirectory() as d:
        if rank == 0:
            torch.save(
                {
                    "model": trainee.model.state_dict(),
                    "objectives": trainee.objectives.state_dict(),
                    "momentum": None if trainee.momentum is None else trainee.momentum.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "step": step,
                    "history": history,
                    "data_position": {"batches_per_rank": step, "world": world},
                    "data": mixture.state().to_dict(),  # sampler state and each source's position
                    "config": cfg.to_dict(),
                },
                os.path.join(d, STATE_FILE),
            )
        torch.save(rng_state(), os.path.join(d, f"rng-rank{rank}.pt"))
        ray.train.report(
            {"step": step, **(metrics or {})},
            checkpoint=ray.train.Checkpoint.from_directory(d),
            checkpoint_dir_name=f"checkpoint-{step:08d}",
        )
    # `report` returns once the files are in storage, but Ray Train registers the checkpoint only
    # when its controller next polls the workers (every ~2 s); a worker that dies before that loses
    # it, and the restarted group resumes from an older one. Go on only once it is registered.
    ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)


def _storage(uri: str) -> tuple[str, Any]:
    """Ray Train storage path (+ filesystem for s3://, at lipforge's one S3 endpoint)."""
    if not uri.startswith("s3://"):
        return os.path.abspath(uri), None
    endpoint = storage.s3_endpoint()
    fs = pyarrow.fs.S3FileSystem(endpoint_override=endpoint) if endpoint else pyarrow.fs.S3FileSystem()
    return uri[len("s3://") :], fs


def _checkpoint_uri(cfg: TrainConfig, path: str) -> str:
    """Where a checkpoint Ray Train reports lives, as lipforge names it: Ray gives an S3 one as
    a path inside the bucket (its filesystem is S3), so the scheme is put back."""
    if cfg.checkpoint.storage.startswith("s3://") and not path.startswith("s3://"):
        return "s3://" + path.lstrip("/")
    return path


def _quiet_without_dashboard() -> None:
    """Without a dashboard Ray Train's placement-group cleaner warns every second that the
    state API is unavailable; a local run does not need that monitor's queries."""
    logging.getLogger(_PG_CLEANER_LOGGER).setLevel(logging.ERROR)


def _check_resources(cfg: TrainConfig) -> None:
    """On a local Ray (no RAY_ADDRESS: nothing can join it), a worker group larger than the
    machine would wait forever for its resources: say so instead."""
    if os.environ.get("RAY_ADDRESS"):
        return
    have = ray.cluster_resources()
    need = {"CPU": cfg.run.workers * cfg.run.cpus_per_worker, "GPU": cfg.run.workers if cfg.run.use_gpu else 0}
    short = [f"{need[r]:g} {r}s (the local Ray has {have.get(r, 0):g})" for r in need if need[r] > have.get(r, 0)]
    if short:
        raise RunFailed(
            f"run {cfg.run.name!r}: run.workers={cfg.run.workers} x run.cpus_per_worker="
            f"{cfg.run.cpus_per_worker:g}{' with GPUs' if cfg.run.use_gpu else ''} needs {', '.join(short)}"
        )


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Failed)\b.*")


def _cause(exc: BaseException) -> str:
    """One line for a failed run: the innermost `SomeError: message` line of the (worker) traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    found = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return found[-1] if found else (lines[0] if lines else type(exc).__name__)


def check_run(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
    """What can be checked before Ray starts: the dataset versions (and the eval one) exist,
    each source has every member the objectives running on its modality read, every source
    trains some objective and every objective gets batches, and the visual tokenizer (when
    an objective needs one) loads. Returns each source's manifest by resolved NAME@N."""
    manifests: dict[str, dict[str, Any]] = {}
    per_batch_round = cfg.run.workers * max(1, cfg.data.num_workers) * cfg.batch_size
    members = cfg.objective_members()
    for ref in cfg.sources():
        manifest, _ = resolve_shards(cfg.root, ref)  # VersionNotFound names what exists
        resolved, modality = f"{manifest['dataset']}@{manifest['version']}", modality_of(manifest)
        runs = {n: m for n, m in members.items() if modality in OBJECTIVES.get(n).modalities}
        if not runs:
            raise RunFailed(
                f"dataset {resolved} is {modality}-only data, but no configured objective trains on {modality} "
                f"batches ({', '.join(cfg.objectives)})"
            )
        check_members(manifest, runs, cfg.data.caption_from, cfg.data.image_from)
        per_epoch = cfg.data.samples_per_epoch or manifest["samples"]
        if per_epoch < per_batch_round:
            raise RunFailed(
                f"run {cfg.run.name!r}: an epoch of {per_epoch} samples ({resolved}) is less than one batch per "
                f"loader worker: run.workers={cfg.run.workers} x data.num_workers={cfg.data.num_workers} x "
                f"batch_size={cfg.batch_size}"
            )
        manifests[resolved] = manifest
    have = {modality_of(m) for m in manifests.values()}
    for name in cfg.objectives:
        wants = OBJECTIVES.get(name).modalities
        if not wants & have:
            raise RunFailed(
                f"objective {name!r} trains on {'/'.join(sorted(wants))} batches, but the run's data is "
                f"{'/'.join(sorted(have))} (add such a source to data.mixture)"
            )
    visual_tokenizer_for(cfg, manifests)  # a missing codebook fails here, naming the command that builds it
    for ref in cfg.eval.sets:
        held_out, _ = resolve_shards(cfg.root, ref)
        if modality_of(held_out) != "pair":
            raise RunFailed(
                f"eval set {ref} is {modality_of(held_out)}-only data; evaluation needs image-caption pairs"
            )
        check_members(held_out, {"eval": ("jpg", "txt")}, ["txt"])
    return manifests


def resolve_sources(cfg: TrainConfig, manifests: dict[str, dict[str, Any]]) -> TrainConfig:
    """The config with its data refs pinned to the versions resolved now (NAME@latest -> NAME@N),
    so every worker and every restarted attempt reads the same versions."""
    pinned = list(manifests)
    if cfg.data.mixture:
        mixture = dict(zip(pinned, cfg.data.mixture.values(), strict=True))
        return cfg.model_copy(update={"data": cfg.data.model_copy(update={"mixture": mixture})})
    return cfg.model_copy(update={"dataset": pinned[0]})


def launch(cfg: TrainConfig) -> dict[str, Any]:
    """Check the run, start Ray, run the TorchTrainer; write and return the summary."""
    cfg = cfg.resolved()
    root = cfg.root if storage.is_remote(cfg.root) else os.path.abspath(cfg.root)
    cfg = cfg.model_copy(update={"root": root})
    manifests = check_run(cfg)
    cfg = resolve_sources(cfg, manifests)
    log_dir = os.path.abspath(os.path.join(cfg.run.log_dir, cfg.run.name))
    log_path = os.path.join(log_dir, LOG_FILE)
    os.makedirs(log_dir, exist_ok=True)
    storage_path, storage_fs = _storage(cfg.checkpoint.storage)
    started = _now()
    record_lineage(cfg, status="running", started=started, log_dir=log_dir)
    with ray_session(log_path=log_path, runtime_env={"worker_process_setup_hook": _quiet_without_dashboard}):
        _quiet_without_dashboard()
        captured = console.current_log()
        _check_resources(cfg)
        trainer = ray.train.torch.TorchTrainer(
            worker_loop,
            train_loop_config={"train": cfg.to_dict(), "log_dir": log_dir},
            torch_config=ray.train.torch.TorchConfig(backend="nccl" if cfg.run.use_gpu else "gloo"),
            scaling_config=ray.train.ScalingConfig(
                num_workers=cfg.run.workers,
                use_gpu=cfg.run.use_gpu,
                resources_per_worker={"CPU": cfg.run.cpus_per_worker},
            ),
            run_config=ray.train.RunConfig(
                name=cfg.run.name,
                storage_path=storage_path,
                storage_filesystem=storage_fs,
                failure_config=ray.train.FailureConfig(max_failures=cfg.run.max_failures),
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.checkpoint.keep),
            ),
        )
        with MetricsBar(log_dir, cfg.steps) as bar:
            try:
                result = trainer.fit()
            except (ray.train.TrainingFailedError, ray.exceptions.RayError) as exc:
                logging.getLogger("lipforge.training").exception("run %r failed", cfg.run.name)
                record_lineage(cfg, status="failed", finished=_now())
                where = f"; the full log is {captured}" if captured else ""
                raise RunFailed(f"run {cfg.run.name!r} failed: {_cause(exc)}{where}") from None
            summary = dict(result.metrics.get("summary", {}))
            bar.finish(summary.get("step", result.metrics.get("step", 0)))
    summary.update(
        dataset=", ".join(manifests),
        sources={ref: weight for ref, weight in cfg.sources().items()},
        run=cfg.run.name,
        root=cfg.root,
        objectives={n: s.weight for n, s in cfg.objectives.items()},
        checkpoint=_checkpoint_uri(cfg, result.checkpoint.path) if result.checkpoint else None,
        log_dir=log_dir,
        log=captured,
    )
    storage.write_json(os.path.join(log_dir, "summary.json"), summary)
    record_lineage(cfg, status="finished", finished=_now(), summary=summary, result=result)
    return summary


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record_lineage(cfg: TrainConfig, result: Any = None, summary: dict | None = None, **fields: Any) -> None:
    """The run in the catalog (`catalog.models`): its resolved config, code version, the
    versions it trains on (weight, samples seen), its checkpoints and summary. Evaluations
    are recorded by `run_eval` as they happen."""
    seen = (summary or {}).get("samples_per_source", {})
    datasets = {
        ref: {"role": "train", "weight": w, "samples_seen": seen.get(ref, 0)} for ref, w in cfg.sources().items()
    }
    if summary is not None:
        fields.update(summary=summary, step=summary.get("step"))
    if result is not None:
        fields["checkpoints"] = [
            {"step": int(m.get("step", 0)), "path": _checkpoint_uri(cfg, c.path)}
            for c, m in (result.best_checkpoints or [])
        ]
    models.record_run(
        cfg.root,
        cfg.run.name,
        config=cfg.to_dict(),
        code_version=code_version(),
        steps=cfg.steps,
        objectives={n: s.weight for n, s in cfg.objectives.items()},
        datasets=datasets,
        **fields,
    )
