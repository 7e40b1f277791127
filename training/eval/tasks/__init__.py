"""Evaluation tasks, one module each, registered by name (`training.eval.base.EVAL_TASKS`)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):  # every module of the package registers its task
    importlib.import_module(f"{__name__}.{_module.name}")
