"""Rank-0 observability: a progress bar on stdout, metrics.jsonl, TensorBoard event files."""

from __future__ import annotations

import json
import os
import sys

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


class RunLog:
    def __init__(self, log_dir: str, total_steps: int, start_step: int) -> None:
        os.makedirs(log_dir, exist_ok=True)
        self.jsonl = open(os.path.join(log_dir, "metrics.jsonl"), "a", encoding="utf-8")
        self.tb = SummaryWriter(os.path.join(log_dir, "tensorboard"))
        self.bar = tqdm(total=total_steps, initial=start_step, file=sys.stdout, ascii=True, mininterval=2.0,
                        dynamic_ncols=False, ncols=100, desc="train")

    def step(self, step: int, metrics: dict[str, float]) -> None:
        self.jsonl.write(json.dumps({"step": step, **metrics}) + "\n")
        self.jsonl.flush()
        for key, value in metrics.items():
            self.tb.add_scalar(key, value, step)
        self.bar.set_postfix(loss=f"{metrics['loss/total']:.3f}", refresh=False)

    def advance(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        self.tb.close()
        self.jsonl.close()
