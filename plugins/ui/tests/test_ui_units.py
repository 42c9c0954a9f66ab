"""Runs-table shaping and artifact previews, without a server."""

from __future__ import annotations

import io
import json
from typing import cast

from tracklog.artifacts import ArtifactRepository
from tracklog.plugins import resolve_repository
from tracklog_ui import runs_table
from tracklog_ui.previews import PREVIEW_BYTES, make_preview


def _run(run_id: str, parent: str | None = None) -> dict:
    tags = [{"key": runs_table.PARENT_TAG, "value": parent}] if parent else []
    return {"info": {"run_id": run_id}, "data": {"tags": tags}}


def test_children_follow_their_parent_and_cycles_show_once():
    runs = [_run("c1", "p"), _run("x"), _run("p"), _run("g", "c1"), _run("orphan", "gone"),
            _run("a", "b"), _run("b", "a")]
    order = [(r.run["info"]["run_id"], r.depth) for r in runs_table.nest(runs)]
    assert order[:4] == [("x", 0), ("p", 0), ("c1", 1), ("g", 2)]
    assert ("orphan", 0) in order
    assert sorted(i for i, _ in order) == sorted(r["info"]["run_id"] for r in runs)


def test_sort_links_and_error_positions():
    assert runs_table.next_order("", "metrics.loss") == "metrics.loss DESC"
    assert runs_table.next_order("metrics.loss DESC", "metrics.loss") == "metrics.loss ASC"
    assert runs_table.quote_key("val loss") == "`val loss`"
    assert runs_table.locate("metrics.a < 1 xyz", "Invalid clause(s): 'xyz'") == 14
    assert runs_table.locate("abc", "no quote here") is None


class CountingRepository:
    """A real local repository whose streams count the bytes handed out."""

    def __init__(self, root: str) -> None:
        self.repo = resolve_repository(root)
        self.read = 0

    def open_artifact(self, path: str) -> io.RawIOBase:
        stream = self.repo.open_artifact(path)
        owner = self

        class Counted(io.RawIOBase):
            def read(self, n: int = -1) -> bytes:
                data = stream.read(n)
                owner.read += len(data)
                return data

            def close(self) -> None:
                stream.close()

        return Counted()


def test_previews_read_only_the_first_bytes(tmp_path):
    root = tmp_path / "a"
    root.mkdir()
    (root / "big.log").write_bytes(b"line\n" * 2_000_000)  # 10 MB
    (root / "x.json").write_text(json.dumps({"k": [1, 2]}))
    (root / "bad.json").write_text("{not json")
    (root / "t.csv").write_text("a,b\n1,2\n3,4\n")
    (root / "blob.bin").write_bytes(b"\x00\x01" * 10)
    (root / "data").write_bytes(b"\x00binary")
    counting = CountingRepository(str(root))
    repo = cast(ArtifactRepository, counting)  # make_preview only opens artifacts
    big = make_preview(repo, "big.log", 10_000_000)
    assert big.kind == "text" and big.truncated and len(big.text) == PREVIEW_BYTES
    assert counting.read <= PREVIEW_BYTES + 1
    assert make_preview(repo, "x.json", None).text == json.dumps({"k": [1, 2]}, indent=2)
    assert make_preview(repo, "bad.json", None).text == "{not json"
    table = make_preview(repo, "t.csv", None)
    assert (table.kind, table.header, table.rows) == ("table", ["a", "b"], [["1", "2"], ["3", "4"]])
    assert make_preview(repo, "blob.bin", None).kind == "none"
    assert make_preview(repo, "data", None).kind == "none"
    assert make_preview(repo, "pic.PNG", None).kind == "image"
    assert make_preview(repo, "huge.png", 10**9).kind == "none"


def test_default_columns_leave_out_empty_attributes():
    runs = [{"info": {"run_id": "a", "start_time": 5, "user_id": "", "status": "FINISHED"},
             "data": {"metrics": [{"key": "loss", "value": 1.0}]}}]
    chosen = runs_table.default_columns(runs_table.available_columns(runs), runs)
    assert chosen == ["attributes.start_time", "attributes.status", "metrics.loss"]


def test_parquet_preview_needs_pyarrow(tmp_path):
    import importlib.util

    root = tmp_path / "p"
    root.mkdir()
    repo = resolve_repository(str(root))
    if importlib.util.find_spec("pyarrow") is None:
        (root / "t.parquet").write_bytes(b"PAR1")
        preview = make_preview(repo, "t.parquet", 4)
        assert preview.kind == "none" and "pyarrow" in preview.note
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), root / "t.parquet")
    size = (root / "t.parquet").stat().st_size
    preview = make_preview(repo, "t.parquet", size)
    assert (preview.header, preview.rows) == (["a", "b"], [[1, "x"], [2, "y"]])
    assert make_preview(repo, "t.parquet", 10**9).kind == "none"
