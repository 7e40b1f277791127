"""The lineage graph of versions: parents from manifests, children found by reverse lookup."""

from __future__ import annotations

from typing import Any

from catalog.index import CatalogIndex


def lineage(index: CatalogIndex, dataset: str, version: int) -> dict[str, Any]:
    """Ancestors and descendants of `dataset@version` plus the other versions of its dataset.

    Returns `{"nodes": [ref, ...] (sorted), "edges": [(parent, child), ...], "focus": ref,
    "parents": [...], "children": [...]}`; refs are 'NAME@N'. A parent that is not in the
    catalog (deleted, other root) still appears as a node.
    """
    parents_of = {f"{r['dataset']}@{r['version']}": list(r["parents"]) for r in index.versions()}
    children_of: dict[str, list[str]] = {}
    for child, parents in parents_of.items():
        for parent in parents:
            children_of.setdefault(parent, []).append(child)
    focus = f"{dataset}@{version}"
    seen, stack = {focus}, [focus]
    while stack:
        ref = stack.pop()
        for nxt in parents_of.get(ref, []) + children_of.get(ref, []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    seen.update(ref for ref in parents_of if ref.partition("@")[0] == dataset)
    edges = sorted((p, c) for c in seen for p in parents_of.get(c, []) if p in seen)
    return {
        "nodes": sorted(seen, key=_ref_order),
        "edges": edges,
        "focus": focus,
        "parents": parents_of.get(focus, []),
        "children": sorted(children_of.get(focus, []), key=_ref_order),
    }


def _ref_order(ref: str) -> tuple[str, int]:
    name, _, ver = ref.partition("@")
    return name, int(ver) if ver.isdigit() else -1
