"""Service failures become one-line TracklogErrors naming the URI, with a fitting code;
configuration is checked when a repository is created."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tracklog.artifacts import ArtifactRepository
from tracklog.errors import ErrorCode, TracklogError
from tracklog.plugins import resolve_repository
from tracklog_artifacts_gcs.repository import GCSArtifactRepository
from tracklog_artifacts_gcs.settings import Settings


def expect(code: ErrorCode, func, *args) -> str:
    with pytest.raises(TracklogError) as err:
        func(*args)
    assert err.value.error_code == code, err.value
    message = err.value.message
    assert "\n" not in message and "Traceback" not in message
    return message


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["MLFLOW_GCS_UPLOAD_CHUNK_SIZE",
                                      "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE"])
@pytest.mark.parametrize("value", ["1000", "262145", "0", "-262144", "8MB"])
def test_chunk_size_must_be_a_multiple_of_256_kib(repo_uri, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    message = expect(ErrorCode.INVALID_PARAMETER_VALUE, resolve_repository, repo_uri)
    assert variable in message and "256 KiB" in message and repr(value) in message


def _gcs(repo: ArtifactRepository) -> GCSArtifactRepository:
    assert isinstance(repo, GCSArtifactRepository)
    return repo


def test_chunk_sizes_and_timeout_from_the_environment(repo_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_GCS_UPLOAD_CHUNK_SIZE", str(512 * 1024))
    monkeypatch.setenv("MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE", str(256 * 1024))
    monkeypatch.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "-1")
    monkeypatch.setenv("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS", "60")
    assert _gcs(resolve_repository(repo_uri)).settings == Settings(
        upload_chunk_size=512 * 1024, download_chunk_size=256 * 1024, timeout=None,
        presigned_url_ttl=60,
    )
    monkeypatch.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "30")
    assert _gcs(resolve_repository(repo_uri)).settings.timeout == 30


@pytest.mark.parametrize("variable", ["MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT",
                                      "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS"])
def test_bad_seconds_name_the_variable(repo_uri, monkeypatch, variable):
    monkeypatch.setenv(variable, "soon")
    message = expect(ErrorCode.INVALID_PARAMETER_VALUE, resolve_repository, repo_uri)
    assert variable in message


@pytest.mark.parametrize("uri", ["gs://", "gs:///prefix", "gs://b/../up", "gs://b/p?x=1"])
def test_bad_uris_are_refused(uri):
    expect(ErrorCode.INVALID_PARAMETER_VALUE, GCSArtifactRepository, uri)


# -- the emulator's own failures -----------------------------------------------------------


def test_missing_bucket_is_one_clear_line(emulator):
    """What the server's start-up check sees first: the root of a missing bucket."""
    repo = GCSArtifactRepository("gs://no-such-bucket/runs")
    message = expect(ErrorCode.RESOURCE_DOES_NOT_EXIST, repo.file_info, "")
    assert message == ("gs://no-such-bucket/runs: checking the artifact root failed: "
                       "bucket 'no-such-bucket' does not exist")
    expect(ErrorCode.RESOURCE_DOES_NOT_EXIST, repo.list_artifacts, "")
    expect(ErrorCode.RESOURCE_DOES_NOT_EXIST, repo.file_info, "a/b.txt")
    message = expect(ErrorCode.RESOURCE_DOES_NOT_EXIST, repo.write_artifact, "a.txt",
                     io.BytesIO(b"a"))
    assert "bucket 'no-such-bucket' does not exist" in message


def test_unreachable_service(emulator, monkeypatch, unused_port):
    """Nothing listens on the endpoint: TEMPORARILY_UNAVAILABLE once retries run out
    (the timeout bounds them), without the request URL."""
    port = unused_port
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    repo = GCSArtifactRepository("gs://b/p", settings=Settings(timeout=1))
    message = expect(ErrorCode.TEMPORARILY_UNAVAILABLE, repo.file_info, "")
    assert message.startswith("gs://b/p: checking the artifact root failed: cannot connect")
    assert str(port) not in message


# -- refusals the emulator cannot produce: a stand-in HTTP service, labelled as such --------


class Refusing(BaseHTTPRequestHandler):
    """A stand-in for the real service's refusals (fake-gcs-server checks no
    permissions): every request gets ``status`` with GCS's JSON error body."""

    status = 403
    text = "tracklog-test@example.iam does not have storage.objects.list access"

    def _answer(self) -> None:
        if self.path.startswith("/token"):  # the OAuth token endpoint of a key file
            body = json.dumps({"error": "invalid_grant",
                               "error_description": "Invalid JWT Signature."}).encode()
            self.send_response(400)
        else:
            body = json.dumps({"error": {"code": self.status, "message": self.text,
                                         "errors": [{"message": self.text}]}}).encode()
            self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def refusing(monkeypatch) -> Iterator[type[Refusing]]:
    handler: Any = type("Handler", (Refusing,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", handler.url)
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_forbidden(refusing):
    repo = GCSArtifactRepository("gs://b/p", settings=Settings(timeout=5))
    message = expect(ErrorCode.PERMISSION_DENIED, repo.file_info, "")
    assert message == (f"gs://b/p: checking the artifact root failed: permission denied: "
                       f"{Refusing.text}")
    expect(ErrorCode.PERMISSION_DENIED, repo.open_artifact, "x.txt")
    expect(ErrorCode.PERMISSION_DENIED, repo.write_artifact, "x.txt", io.BytesIO(b"x"))


def test_anonymous_access_refused(refusing):
    """An endpoint that wants credentials answers 401 to the anonymous emulator client."""
    refusing.status = 401
    repo = GCSArtifactRepository("gs://b/p", settings=Settings(timeout=5))
    message = expect(ErrorCode.UNAUTHENTICATED, repo.list_artifacts, "")
    assert message == ("gs://b/p: checking the artifact root failed: credentials refused: "
                       "anonymous access denied")


def test_expired_key_cannot_refresh(refusing, monkeypatch, key_file):
    """A real google-auth refresh against a token endpoint that answers invalid_grant
    (a revoked or expired key): UNAUTHENTICATED, and the key never shows."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    key = key_file(refusing.url + "/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    repo = GCSArtifactRepository("gs://b/p", settings=Settings(timeout=5))
    message = expect(ErrorCode.UNAUTHENTICATED, repo.file_info, "")
    assert message.startswith("gs://b/p: checking the artifact root failed: "
                              "credentials could not be refreshed: invalid_grant")
    assert "PRIVATE KEY" not in message


def test_no_credentials_at_all(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud login here
    monkeypatch.setenv("NO_GCE_CHECK", "true")  # and no metadata server probe
    message = expect(ErrorCode.UNAUTHENTICATED, GCSArtifactRepository, "gs://b/p")
    assert message.startswith("gs://b/p: connecting failed: no Google Cloud credentials")


def test_presigned_ttl_is_a_plugin_option_under_both_names():
    from tracklog.plugins import plugin_infos

    legacy = "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS"
    own = "TRACKLOG_ARTIFACTS_GCS_PRESIGNED_DOWNLOAD_TTL"
    assert Settings.from_env({}).presigned_url_ttl == 300
    assert Settings.from_env({legacy: "60"}).presigned_url_ttl == 60
    assert Settings.from_env({own: "90", legacy: "60"}).presigned_url_ttl == 90
    with pytest.raises(TracklogError, match=own):
        Settings.from_env({own: "-1"})
    (info,) = [i for i in plugin_infos() if i.name == "artifacts-gcs"]
    assert [(o["flag"], o["environment"]) for o in info.options] == [
        ("--artifacts-gcs-presigned-download-ttl", [own, legacy])]
