"""End-to-end tests of an artifact plugin behind ``tracklog server``, driven by the real
MLflow client through the server's artifact proxy.

Subclass :class:`ProxiedArtifactsTests` and provide a ``destination`` fixture yielding the
``--artifacts-destination`` URI (a fresh, empty location on the real service). What the
server wrote is read back with the plugin's own repository, through ``resolve_repository``::

    class TestProxied(ProxiedArtifactsTests):
        @pytest.fixture
        def destination(self, sftp_server):
            return f"sftp://sshd-test{sftp_server.root}/artifacts"

Needs the MLflow client (``pip install mlflow-skinny``); without it the tests skip.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracklog.testing.server import start_server

MiB = 1024 * 1024
_PROXY = "mlflow-artifacts:/"


def _mlflow() -> Any:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return pytest.importorskip("mlflow")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


class ProxiedArtifactsTests:
    """A tree, a 50 MB file and a model round trip; eight concurrent uploads; a 404."""

    @pytest.fixture
    def destination(self) -> str:
        raise NotImplementedError("provide a `destination` fixture: the destination URI")

    @pytest.fixture
    def server(self, destination: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
        """A server on SQLite whose proxied artifacts go to ``destination``."""
        mlflow = _mlflow()
        home = tmp_path / "server"
        home.mkdir()
        with start_server("--backend-store-uri", f"sqlite:///{home / 'tracklog.db'}",
                          "--artifacts-destination", destination, cwd=home) as server:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
            mlflow.set_tracking_uri(server.url)
            mlflow.set_experiment(experiment_id="0")
            yield server.url

    @staticmethod
    def stored(destination: str, run_id: str, path: str) -> bytes:
        """The bytes the server stored for ``path`` of run ``run_id``, read with the
        plugin's own repository."""
        from tracklog.plugins import resolve_repository

        artifact_uri = _mlflow().MlflowClient().get_run(run_id).info.artifact_uri
        assert artifact_uri.startswith(_PROXY), artifact_uri
        repo = resolve_repository(destination.rstrip("/") + "/" + artifact_uri[len(_PROXY):])
        return b"".join(repo.iter_artifact(path))

    def test_tree_big_file_and_model(self, server: str, destination: str,
                                     tmp_path: Path) -> None:
        """A directory tree, a 50 MB file byte for byte and a pyfunc model go through the
        proxy to the service and come back through the MLflow client."""
        mlflow = _mlflow()
        local = tmp_path / "upload"
        files = {"tree/a.json": b'{"a": 1}', "tree/deep/b.bin": os.urandom(3000),
                 "tree/deep/empty.bin": b""}
        for name, data in files.items():
            (local / name).parent.mkdir(parents=True, exist_ok=True)
            (local / name).write_bytes(data)
        big = tmp_path / "weights.bin"
        digest = hashlib.sha256()
        with open(big, "wb") as f:
            for i in range(50):
                block = i.to_bytes(4, "big") + os.urandom(MiB - 4)
                digest.update(block)
                f.write(block)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(local / "tree"), "tree")
            mlflow.log_artifact(str(big), "weights")
            info = mlflow.pyfunc.log_model(name="model", python_model=_doubler(),
                                           pip_requirements=[])
        run_id = run.info.run_id
        client = mlflow.MlflowClient()
        assert [f.path for f in client.list_artifacts(run_id)] == ["tree", "weights"]
        assert {f.path: f.file_size for f in client.list_artifacts(run_id, "tree/deep")} == {
            "tree/deep/b.bin": 3000, "tree/deep/empty.bin": 0}
        back = Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="tree", dst_path=str(tmp_path / "back")))
        assert _tree(back) == {k[len("tree/"):]: v for k, v in files.items()}
        weights = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="weights/weights.bin", dst_path=str(tmp_path / "w"))
        with open(weights, "rb") as back_file:
            assert hashlib.file_digest(back_file, "sha256").hexdigest() == digest.hexdigest()
        loaded = mlflow.pyfunc.load_model(info.model_uri)
        assert list(loaded.predict([1, 2, 3])) == [2, 4, 6]
        # What the server wrote is on the service, where the run's artifact root says.
        stored = hashlib.sha256(self.stored(destination, run_id, "weights/weights.bin"))
        assert stored.hexdigest() == digest.hexdigest()
        for name, data in files.items():
            assert self.stored(destination, run_id, name) == data

    def test_eight_concurrent_uploads(self, server: str, destination: str,
                                      tmp_path: Path) -> None:
        """Eight clients upload at once to one run through the server's worker threads."""
        mlflow = _mlflow()
        blobs = {f"part-{i}.bin": os.urandom(3 * MiB + i) for i in range(8)}
        for name, data in blobs.items():
            (tmp_path / name).write_bytes(data)
        client = mlflow.MlflowClient()
        run_id = client.create_run("0").info.run_id
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: client.log_artifact(run_id, str(tmp_path / n), "parts"),
                          blobs))
        listed = {f.path: f.file_size for f in client.list_artifacts(run_id, "parts")}
        assert listed == {f"parts/{n}": len(d) for n, d in blobs.items()}
        with ThreadPoolExecutor(8) as pool:
            paths = list(pool.map(lambda n: mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"parts/{n}",
                dst_path=str(tmp_path / "back" / n)), blobs))
        assert [Path(p).read_bytes() for p in paths] == list(blobs.values())
        for name, data in blobs.items():
            assert self.stored(destination, run_id, f"parts/{name}") == data

    def test_missing_file_is_404(self, server: str) -> None:
        response = httpx.get(f"{server}/api/2.0/mlflow-artifacts/artifacts/0/nope/ghost.bin")
        assert response.status_code == 404
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def _doubler() -> Any:
    python_model: Any = pytest.importorskip("mlflow.pyfunc").PythonModel

    class Doubler(python_model):
        def predict(self, context, model_input, params=None):
            return [2 * x for x in model_input]

    return Doubler()
