"""Evaluation: zero-shot classification, retrieval, linear probe, word-patch alignment.

Tasks are modules under `training/eval/tasks/`, registered by name in `EVAL_TASKS` and
selected in `eval.tasks` of a training config; `training.eval.runner.evaluate` runs them
over `eval.sets` (dataset versions). docs/evaluation.md describes each and its metrics.
"""

from training.eval import tasks  # noqa: F401  (registers every task)
from training.eval.base import EVAL_TASKS, EvalContext, EvalTask, TaskOptions, TaskResult

__all__ = ["EVAL_TASKS", "EvalContext", "EvalTask", "TaskOptions", "TaskResult"]
