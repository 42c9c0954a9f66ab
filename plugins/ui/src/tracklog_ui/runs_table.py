"""Shaping one page of ``runs/search`` into table rows: columns, sort links, nesting."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PARENT_TAG = "mlflow.parentRunId"

#: Attribute columns: id, header, order_by key (None: not sortable).
ATTRIBUTES = [
    ("attributes.start_time", "Created", "attributes.start_time"),
    ("attributes.duration", "Duration", None),
    ("attributes.user_id", "User", "attributes.user_id"),
    ("attributes.status", "Status", "attributes.status"),
    ("tags.mlflow.source.name", "Source", "tags.`mlflow.source.name`"),
]
DEFAULT_SHOWN = 12  # params and metrics shown before the reader chooses


@dataclass
class Column:
    id: str
    header: str
    group: str  # attributes | metrics | params | tags
    order_key: str | None


@dataclass
class Row:
    run: dict[str, Any]
    cells: dict[str, Any]
    depth: int = 0
    parent: str | None = None
    children: list[Row] = field(default_factory=list)


def quote_key(key: str) -> str:
    """A key as the filter and order-by grammar reads it (backquoted unless plain)."""
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"`{key}`"


def cells_of(run: dict[str, Any]) -> dict[str, Any]:
    info, data = run["info"], run.get("data", {})
    cells: dict[str, Any] = {
        "attributes.start_time": info.get("start_time"),
        "attributes.user_id": info.get("user_id", ""),
        "attributes.status": info.get("status", ""),
    }
    end, start = info.get("end_time"), info.get("start_time")
    cells["attributes.duration"] = (end - start) if end and start else None
    for m in data.get("metrics", []):
        cells["metrics." + m["key"]] = m["value"]
    for p in data.get("params", []):
        cells["params." + p["key"]] = p["value"]
    for t in data.get("tags", []):
        cells["tags." + t["key"]] = t["value"]
    return cells


def available_columns(runs: list[dict[str, Any]]) -> list[Column]:
    keys: dict[str, set[str]] = {"metrics": set(), "params": set(), "tags": set()}
    for run in runs:
        data = run.get("data", {})
        for group in keys:
            keys[group].update(x["key"] for x in data.get(group, []))
    cols = [Column(i, h, "attributes", o) for i, h, o in ATTRIBUTES]
    for group, label in (("metrics", "metrics"), ("params", "params"), ("tags", "tags")):
        cols += [Column(f"{group}.{k}", k, label, f"{group}.{quote_key(k)}")
                 for k in sorted(keys[group]) if not k.startswith("mlflow.")]
    return cols


def default_columns(cols: list[Column], runs: list[dict[str, Any]]) -> list[str]:
    """Attributes that have a value on the page, then the first params and metrics."""
    cells = [cells_of(r) for r in runs]
    chosen = [c.id for c in cols if c.group == "attributes"
              and any(x.get(c.id) not in (None, "") for x in cells)]
    for group in ("metrics", "params"):
        chosen += [c.id for c in cols if c.group == group][:DEFAULT_SHOWN]
    return chosen


def nest(runs: list[dict[str, Any]]) -> list[Row]:
    """Rows in page order, each child run right under its parent when the parent is on
    the same page (depth-first), otherwise where it stands with its parent's id."""
    rows = {r["info"]["run_id"]: Row(r, cells_of(r)) for r in runs}
    top: list[Row] = []
    for row in rows.values():
        parent = row.cells.get("tags." + PARENT_TAG)
        row.parent = parent
        if parent in rows and parent != row.run["info"]["run_id"]:
            rows[parent].children.append(row)
        else:
            top.append(row)
    out: list[Row] = []
    seen: set[str] = set()

    def walk(row: Row, depth: int) -> None:
        run_id = row.run["info"]["run_id"]
        if run_id in seen:  # a cycle of parent tags: show each run once
            return
        seen.add(run_id)
        row.depth = depth
        out.append(row)
        for child in row.children:
            walk(child, depth + 1)

    for row in top:
        walk(row, 0)
    for row in rows.values():  # runs caught in a cycle with no top-level ancestor
        walk(row, 0)
    return out


def next_order(order_by: str, key: str) -> str:
    """The order a header's link asks for: descending first, then ascending."""
    return f"{key} ASC" if order_by == f"{key} DESC" else f"{key} DESC"


def locate(text: str, message: str) -> int | None:
    """Where in ``text`` the parser's complaint is: the first quoted fragment of
    ``message`` found in the filter (0-based), or None."""
    for fragment in re.findall(r"'([^']+)'", message):
        at = text.find(fragment)
        if at >= 0:
            return at
    return None
