"""Linear probe on frozen image features (FILIP §4.3 / CLIP's protocol; CLIP_benchmark's
probe picks its weight decay on a validation split).

The labelled images are split by a hash of their sample key (stable across runs and
models) into train / validation / test; an L-BFGS logistic regression (scikit-learn) is fit
on train for every inverse regulariser in `cs`, the best on validation is refit on
train + validation and scored on test. Features: the L2-normalised global image
embeddings the model retrieves with.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Literal

import numpy as np

from training.eval.base import EvalContext, EvalTask, TaskOptions, TaskResult, register
from training.eval.sets import LABEL_KINDS


class Options(TaskOptions):
    labels: list[Literal["shape", "colour", "shape_colour", "label"]] = list(LABEL_KINDS)
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    cs: list[float] = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
    max_iter: int = 1000


def split_of(key: str, val: float, test: float) -> str:
    u = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test else ("val" if u < test + val else "train")


def fit_probe(
    x: np.ndarray, y: np.ndarray, splits: list[str], cs: list[float], max_iter: int = 1000
) -> tuple[float, float]:
    """(test accuracy, chosen C): fit on train per C, pick on val, refit on train+val."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    s = np.array(splits)
    tr, va, te = s == "train", s == "val", s == "test"

    def fit(mask: np.ndarray, c: float) -> LogisticRegression:
        # one BLAS thread: these fits are tiny, and a thread pool per fit spinning against the
        # trainer's threads made one fit take seconds instead of milliseconds (measured)
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")  # convergence warnings on separable data
            return LogisticRegression(C=c, max_iter=max_iter).fit(x[mask], y[mask])

    best = max(cs, key=lambda c: (fit(tr, c).score(x[va], y[va]), -abs(np.log10(c))))
    return float(fit(tr | va, best).score(x[te], y[te])), best


@register("probe")
class LinearProbe(EvalTask):
    Options = Options

    def run(self, ctx: EvalContext) -> TaskResult:
        out, o = TaskResult(), self.options
        feats = ctx.images().features.numpy()
        for kind in o.labels:
            idx, names = ctx.data.labels(kind)
            splits = [split_of(ctx.data.keys[i], o.val_fraction, o.test_fraction) for i in idx]
            y = np.array(names)
            ok = all(len(set(y[np.array(splits) == s])) >= (2 if s == "train" else 1) for s in ("train", "val", "test"))
            if len(set(names)) < 2 or not ok:
                out.notes.append(f"probe/{kind}: not applicable (too few labelled images or classes in a split)")
                continue
            acc, c = fit_probe(feats[idx], y, splits, o.cs, o.max_iter)
            out.metrics[f"probe/{kind}/top1"] = acc
            out.chance[f"probe/{kind}/top1"] = 1.0 / len(set(names))
            out.notes.append(f"probe/{kind}: C={c:g} chosen on validation")
        return out
