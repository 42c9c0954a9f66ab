"""`tracklog gc` against a running server's SQLite and PostgreSQL stores, with artifacts
on local disk: deleted runs, experiments and logged models go for good with their
artifacts, live ones stay, and a run whose artifacts cannot be removed is reported,
left whole, and removed by the next run once it can be."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracklog.testing.server import TRACKLOG


def _gc(uri: str, dest: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([TRACKLOG, "gc", "--backend-store-uri", uri,
                           "--artifacts-destination", str(dest), *extra],
                          capture_output=True, text=True, timeout=120)


def _run_with_artifact(client: MlflowClient, exp: str, tmp: Path, name: str) -> str:
    run = client.create_run(exp, run_name=name)
    rid = run.info.run_id
    f = tmp / f"{name}.txt"
    f.write_text(name)
    client.log_artifact(rid, str(f), "files")
    client.log_metric(rid, "loss", 0.5, step=1)
    client.log_param(rid, "p", name)
    client.set_terminated(rid)
    return rid


def _immutable(path: Path, on: bool) -> None:
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True,
                   capture_output=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request, tmp_path, private_database):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gc.db"
    return private_database("postgresql://postgres@127.0.0.1:5432/test", "postgresql")


def test_gc_removes_deleted_records_and_resumes_after_a_failure(tmp_path, serve, store_uri,
                                                                  monkeypatch):
    if shutil.which("chattr") is None:
        pytest.skip("chattr is needed to make a file impossible to delete")
    server = serve(tmp_path, store_uri)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        client = MlflowClient(server.url)
        keep = client.create_experiment("keep")
        kept = _run_with_artifact(client, keep, tmp_path, "kept")
        stuck = _run_with_artifact(client, keep, tmp_path, "stuck")
        client.delete_run(stuck)
        gone_exp = client.create_experiment("gone")
        in_gone = _run_with_artifact(client, gone_exp, tmp_path, "in-gone")
        model = client.create_logged_model(keep, name="m")
        client.delete_logged_model(model.model_id)
        client.delete_experiment(gone_exp)
        dest = server.artifacts
        stuck_file = dest / keep / stuck / "artifacts" / "files" / "stuck.txt"
        assert stuck_file.exists() and (dest / gone_exp / in_gone).exists()

        dry = _gc(store_uri, dest, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"would remove run {stuck}" in dry.stdout
        assert f"would remove experiment {gone_exp}" in dry.stdout
        assert f"would remove logged model {model.model_id}" in dry.stdout
        young = _gc(store_uri, dest, "--older-than", "1d")
        assert "removed 0 runs, 0 logged models, 0 experiments" in young.stdout
        assert client.get_run(stuck).info.lifecycle_stage == "deleted"

        _immutable(stuck_file, True)
        try:
            first = _gc(store_uri, dest)
        finally:
            _immutable(stuck_file, False)
        assert first.returncode == 1
        assert f"failed: run {stuck}" in first.stderr
        assert "removed 1 runs, 1 logged models, 1 experiments" in first.stdout
        assert client.get_run(stuck).info.lifecycle_stage == "deleted"  # record kept
        for gone_id in (in_gone,):
            with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST|not found"):
                client.get_run(gone_id)
        with pytest.raises(MlflowException):
            client.get_experiment(gone_exp)
        assert not (dest / gone_exp).exists()

        second = _gc(store_uri, dest)
        assert second.returncode == 0, second.stderr
        assert "removed 1 runs" in second.stdout
        with pytest.raises(MlflowException):
            client.get_run(stuck)
        assert not (dest / keep / stuck).exists()

        # The live run is untouched, data and artifacts.
        run = client.get_run(kept)
        assert run.data.params == {"p": "kept"} and run.data.metrics == {"loss": 0.5}
        assert [f.path for f in client.list_artifacts(kept, "files")] == ["files/kept.txt"]
        assert client.get_experiment(keep).lifecycle_stage == "active"
        again = _gc(store_uri, dest)
        assert "removed 0 runs, 0 logged models, 0 experiments" in again.stdout
    finally:
        server.stop()
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets it; the hint omits it


def test_gc_refuses_bad_input_before_removing_anything(tmp_path, serve):
    """Unknown or live ids, a nonsense store URI, a duration that is not one: one line on
    stderr, a non-zero exit, and nothing removed (the deleted run named next to them
    stays)."""
    uri = f"sqlite:///{tmp_path}/gc.db"
    server = serve(tmp_path, uri)
    try:
        client = MlflowClient(server.url)
        live = client.create_run("0").info.run_id
        doomed = _run_with_artifact(client, "0", tmp_path, "doomed")
        client.delete_run(doomed)
    finally:
        server.stop()
    out = _gc(uri, server.artifacts, "--run-ids", f"{doomed},{live},nosuchrun")
    assert out.returncode == 1
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("Error: Nothing removed:")
    assert f"run {live} is not deleted" in line and "run nosuchrun does not exist" in line
    for bad_args in (("--logged-model-ids", "m-nope"), ("--experiment-ids", "424242"),
                     ("--older-than", "3 weeks"), ("--older-than", "1x")):
        bad = _gc(uri, server.artifacts, *bad_args)
        assert bad.returncode != 0, bad_args
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "not a duration" in _gc(uri, server.artifacts, "--older-than", "1x").stderr
    for nonsense in ("nonsense", "sqlite:///" + str(tmp_path / "typo.db"), "foo://bar"):
        bad = subprocess.run([TRACKLOG, "gc", "--backend-store-uri", nonsense],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and bad.stderr.startswith("Error: "), nonsense
        assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "typo.db").exists() and not Path("nonsense").exists()
    server = serve(tmp_path, uri)
    try:
        client = MlflowClient(server.url)
        assert client.get_run(doomed).info.lifecycle_stage == "deleted"
        assert [f.path for f in client.list_artifacts(doomed, "files")] == ["files/doomed.txt"]
    finally:
        server.stop()


def test_gc_through_a_server(tmp_path, serve):
    """--tracking-uri: the server removes deleted records and their artifacts itself; a
    server without the route (or none at all) is one clear line."""
    server = serve(tmp_path, f"sqlite:///{tmp_path}/gc.db")
    try:
        client = MlflowClient(server.url)
        kept = _run_with_artifact(client, "0", tmp_path, "kept")
        doomed = _run_with_artifact(client, "0", tmp_path, "doomed")
        client.delete_run(doomed)
        folder = server.artifacts / "0" / doomed
        assert folder.exists()
        dry = subprocess.run([TRACKLOG, "gc", "--tracking-uri", server.url, "--dry-run"],
                             capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, dry.stderr
        assert f"would remove run {doomed}" in dry.stdout and folder.exists()
        done = subprocess.run([TRACKLOG, "gc", "--tracking-uri", server.url],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "removed 1 runs, 0 logged models, 0 experiments" in done.stdout
        with pytest.raises(MlflowException):
            client.get_run(doomed)
        assert not folder.exists()
        assert [f.path for f in client.list_artifacts(kept, "files")] == ["files/kept.txt"]
        bad = subprocess.run([TRACKLOG, "gc", "--tracking-uri", server.url, "--run-ids",
                              kept], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "is not deleted" in bad.stderr
        assert client.get_run(kept).info.lifecycle_stage == "active"
    finally:
        server.stop()
    gone = subprocess.run([TRACKLOG, "gc", "--tracking-uri", server.url],
                          capture_output=True, text=True, timeout=60)
    assert gone.returncode != 0 and gone.stderr.startswith("Error: Cannot reach")
