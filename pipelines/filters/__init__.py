"""Filters: each answers keep (True) or (False, reason) for one row; see base.Filter."""

from pipelines.filters.base import FILTERS, Filter, Verdict

__all__ = ["FILTERS", "Filter", "Verdict"]
