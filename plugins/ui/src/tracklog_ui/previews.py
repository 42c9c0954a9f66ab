"""Artifact previews from a file's first bytes: text and logs, JSON/YAML/MLmodel, CSV as a
table, images (drawn by the browser from the download route), Parquet when pyarrow is
installed. Nothing larger than ``PREVIEW_BYTES`` is read, except a Parquet file up to
``PARQUET_MAX_BYTES`` (its footer is at the end, so it has to be read whole); the
browser fetches images up to ``IMAGE_MAX_BYTES``."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from tracklog.artifacts import ArtifactRepository

PREVIEW_BYTES = 64 * 1024
PARQUET_MAX_BYTES = 16 * 1024 * 1024
IMAGE_MAX_BYTES = 20 * 1024 * 1024  # larger images are a download, not a preview
TABLE_ROWS = 100

_TEXT = {".txt", ".log", ".md", ".py", ".sh", ".cfg", ".ini", ".toml", ".out", ".err",
         ".rst", ".html", ".xml", ".tsv", ".sql", ".r", ".ipynb"}
_YAML = {".yaml", ".yml"}
_YAML_NAMES = {"MLmodel", "MLproject", "conda.yaml", "python_env.yaml"}
_IMAGE = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp"}


@dataclass
class Preview:
    kind: str  # text | json | image | table | none
    text: str = ""
    truncated: bool = False
    header: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


def _kind(name: str) -> str:
    ext = posixpath.splitext(name)[1].lower()
    if name in _YAML_NAMES or ext in _YAML:
        return "text"
    if ext == ".json":
        return "json"
    if ext in _IMAGE:
        return "image"
    if ext == ".csv":
        return "csv"
    if ext == ".parquet":
        return "parquet"
    if ext in _TEXT or not ext:
        return "text"
    return "none"


def _head(repo: ArtifactRepository, path: str, limit: int) -> bytes:
    stream = repo.open_artifact(path)
    try:
        out = bytearray()
        while len(out) < limit:
            chunk = stream.read(limit - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)
    finally:
        stream.close()


def _decode(data: bytes) -> str | None:
    if b"\x00" in data[:8192]:
        return None
    text = data.decode("utf-8", errors="replace")
    return text


def make_preview(repo: ArtifactRepository, path: str, size: int | None) -> Preview:
    """The preview of one file of ``repo``; ``size`` is its length in bytes if known."""
    name = posixpath.basename(path)
    kind = _kind(name)
    if kind == "image":
        if size is not None and size > IMAGE_MAX_BYTES:
            return Preview("none", note="Image too large to preview: download it.")
        return Preview("image")
    if kind == "none":
        return Preview("none", note="No preview for this kind of file: download it.")
    if kind == "parquet":
        return _parquet(repo, path, size)
    data = _head(repo, path, PREVIEW_BYTES + 1)
    truncated = len(data) > PREVIEW_BYTES
    data = data[:PREVIEW_BYTES]
    text = _decode(data)
    if text is None:
        return Preview("none", note="Binary file: download it.")
    if kind == "json" and not truncated:
        try:
            return Preview("json", json.dumps(json.loads(text), indent=2, ensure_ascii=False))
        except ValueError:
            pass
    if kind == "csv":
        if truncated:  # the last line is likely cut
            text = text[: text.rfind("\n") + 1] or text
        rows = list(csv.reader(io.StringIO(text)))
        if rows:
            return Preview("table", header=rows[0], rows=rows[1:TABLE_ROWS + 1],
                           truncated=truncated or len(rows) > TABLE_ROWS + 1)
    return Preview("json" if kind == "json" else "text", text, truncated)


def _parquet(repo: ArtifactRepository, path: str, size: int | None) -> Preview:
    if importlib.util.find_spec("pyarrow") is None:
        return Preview("none", note="Install pyarrow on the server to preview Parquet files.")
    if size is None or size > PARQUET_MAX_BYTES:
        return Preview("none", note="Too large to preview: download it.")
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(_head(repo, path, size))).slice(0, TABLE_ROWS)
    columns = table.column_names
    rows = [list(r.values()) for r in table.to_pylist()]
    return Preview("table", header=columns, rows=rows, truncated=table.num_rows >= TABLE_ROWS)
