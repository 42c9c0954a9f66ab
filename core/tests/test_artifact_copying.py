"""Artifact copying for ``tracklog migrate --artifacts``: trees copied file by file between
local repositories, files already there with the same size skipped (an interrupted copy
resumes), a cut-short file written again, proxied locations resolved below their
destination, and the same place on both sides left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracklog.artifacts.copying import ArtifactCopier, repository_tree, resolve_location
from tracklog.errors import TracklogError
from tracklog.plugins import load_plugins, resolve_repository


def _copier(src_destination: str | None, dest_destination: str | None) -> ArtifactCopier:
    load_plugins()
    return ArtifactCopier(
        lambda uri: repository_tree(uri, src_destination, resolve_repository),
        dest_destination, resolve_repository, src_destination)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_copies_trees_and_resumes_by_size(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    run = src / "1" / "r" / "artifacts"
    (run / "model" / "deep").mkdir(parents=True)
    (run / "a.txt").write_bytes(b"a" * 10)
    (run / "model" / "w.bin").write_bytes(b"w" * 5000)
    (run / "model" / "deep" / "x").write_bytes(b"")
    # An earlier, interrupted copy: one file whole, one cut short.
    there = dst / "1" / "r" / "artifacts"
    (there / "model").mkdir(parents=True)
    (there / "a.txt").write_bytes(b"a" * 10)
    (there / "model" / "w.bin").write_bytes(b"w" * 100)
    copier = _copier(str(src), str(dst))
    copier.copy("run", "mlflow-artifacts:/1/r/artifacts", "mlflow-artifacts:/1/r/artifacts")
    assert _files(there) == _files(run)
    assert (copier.report.files, copier.report.skipped) == (2, 1)
    assert copier.report.bytes == 5000
    again = _copier(str(src), str(dst))
    again.copy("run", "mlflow-artifacts:/1/r/artifacts", "mlflow-artifacts:/1/r/artifacts")
    assert (again.report.files, again.report.skipped) == (0, 3)


def test_same_place_is_left_alone_and_put_writes_once(tmp_path):
    folder = tmp_path / "runs" / "artifacts"
    folder.mkdir(parents=True)
    (folder / "f").write_bytes(b"f")
    copier = _copier(None, None)
    copier.copy("run", folder.as_uri(), folder.as_uri())
    assert copier.report.files == 0 and _files(folder) == {"f": b"f"}
    trace = tmp_path / "t" / "artifacts"
    copier.put(trace.as_uri(), "traces.json", b'{"spans": []}')
    copier.put(trace.as_uri(), "traces.json", b'{"spans": []}')
    assert (copier.report.files, copier.report.skipped) == (1, 1)
    assert (trace / "traces.json").read_bytes() == b'{"spans": []}'


def test_a_proxied_location_needs_its_destination():
    with pytest.raises(TracklogError, match="--artifacts-destination"):
        resolve_location("mlflow-artifacts:/1/r/artifacts", None)
    assert resolve_location("mlflow-artifacts:/1/r", "s3://b/root/") == "s3://b/root/1/r"
    assert resolve_location("s3://b/x", None) == "s3://b/x"
