"""Service failures become one-line TracklogErrors naming the URI and the cause, with the
fitting MLflow code, and no secret in the text or in the logs."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_azure.factory import open_repository
from tracklog_artifacts_azure.signing import AzureSigningArtifactRepository

from .conftest import ACCOUNT, KEY, free_port


def _error(func, *args) -> TracklogError:
    with pytest.raises(TracklogError) as excinfo:
        func(*args)
    error = excinfo.value
    assert "\n" not in error.message
    assert "Traceback" not in error.message
    return error


def _write(repo, path: str, data: bytes = b"x") -> None:
    repo.write_artifact(path, io.BytesIO(data))


def test_missing_container_at_stat_of_root(azure_env):
    """What the server's start check calls: a clear error, not an empty listing."""
    uri = azure_env.uri("p", container="no-such-container")
    repo = open_repository(uri)
    error = _error(repo._stat, "")
    assert error.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert uri in error.message
    assert "container does not exist" in error.message
    assert "ContainerNotFound" in error.message


@pytest.mark.parametrize("operation", ["list", "write", "file_info", "open", "delete"])
def test_missing_container_everywhere(azure_env, operation):
    repo = open_repository(azure_env.uri("p", container="no-such-container"))
    calls = {
        "list": (repo.list_artifacts, "d"),
        "write": (_write, repo, "d/f.txt"),
        "file_info": (repo.file_info, "d/f.txt"),
        "open": (repo.open_artifact, "d/f.txt"),
        "delete": (repo.delete_artifacts, "d"),
    }
    func, *args = calls[operation]
    error = _error(func, *args)
    assert error.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert "no-such-container" in error.message


def test_blob_gone_between_stat_and_read_is_not_found(azure_env, prefix):
    repo = open_repository(azure_env.uri(prefix))
    error = _error(repo._open, "gone.txt")
    assert error.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert f"{prefix}/gone.txt" in error.message


def test_wrong_key_is_permission_denied_without_secrets(azure_env, prefix, monkeypatch):
    wrong = azure_env.connection_string.replace(KEY, "d3Jvbmcga2V5" * 4)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
    repo = open_repository(azure_env.uri(prefix))
    for func, *args in ((repo.list_artifacts,), (_write, repo, "f.txt")):
        error = _error(func, *args)
        assert error.error_code == ErrorCode.PERMISSION_DENIED
        assert "HTTP 403" in error.message
        assert "d3Jvbmcga2V5" not in error.message


def test_expired_sas_connection_string(azure_env, prefix, monkeypatch):
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        ACCOUNT, KEY, ResourceTypes(container=True, object=True),
        AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) - timedelta(minutes=1),
    )
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"BlobEndpoint={azure_env.endpoint};SharedAccessSignature={sas}")
    error = _error(open_repository(azure_env.uri(prefix)).list_artifacts, "d")
    assert error.error_code == ErrorCode.PERMISSION_DENIED
    signature = [p for p in sas.split("&") if p.startswith("sig=")][0]
    assert signature not in error.message
    assert signature.split("=", 1)[1] not in error.message


def test_unreachable_endpoint(azure_env, prefix, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}/{ACCOUNT}"
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       azure_env.connection_string.replace(azure_env.endpoint, closed))
    repo = open_repository(azure_env.uri(prefix), client_options={"retry_total": 0})
    error = _error(repo._stat, "")
    assert error.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
    assert "unreachable" in error.message
    assert "Connection refused" in error.message
    assert KEY not in error.message


def test_malformed_connection_string_names_the_variable_not_its_value(azure_env, monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountKey=s3cr3t-value")
    error = _error(open_repository, azure_env.uri("p"))
    assert error.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "AZURE_STORAGE_CONNECTION_STRING" in error.message
    assert "s3cr3t" not in error.message


def test_connection_string_for_another_account(azure_env):
    error = _error(open_repository, "wasbs://c@otheraccount.blob.core.windows.net/p")
    assert error.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "otheraccount" in error.message and ACCOUNT in error.message
    assert KEY not in error.message


@pytest.mark.parametrize("uri", [
    "wasbs://c.blob.core.windows.net/p",
    "wasbs://c@account/p",
    "wasbs://c@account.dfs.core.windows.net/p",
    "abfss://c@account.blob.core.windows.net/p",
    "wasbs://c@account.blob.core.windows.net/a//b",
    "wasbs://c@account.blob.core.windows.net/p?sig=x",
])
def test_malformed_uri_is_invalid(azure_env, uri):
    error = _error(open_repository, uri)
    assert error.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert error.message.startswith(f"Invalid Azure artifact URI '{uri.split('?')[0]}'")
    assert "sig=" not in error.message


def test_no_secret_in_logs(azure_env, prefix, monkeypatch, caplog):
    """Everything the Azure SDK and the plugin log, down to DEBUG, for successful and
    failed requests and for signing, is free of the key and of SAS signatures."""
    caplog.set_level(logging.DEBUG)
    repo = open_repository(azure_env.uri(prefix), client_options={"logging_enable": True})
    assert isinstance(repo, AzureSigningArtifactRepository)  # the key can sign
    _write(repo, "a.txt", b"alpha")
    repo.list_artifacts()
    url, _, _ = repo.presigned_download_url("a.txt")
    _, parts = repo.create_multipart_upload("b.bin", 1)
    repo.delete_artifacts()
    wrong = azure_env.connection_string.replace(KEY, "d3Jvbmcga2V5" * 4)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
    with pytest.raises(TracklogError):
        open_repository(azure_env.uri(prefix)).list_artifacts()
    assert caplog.records
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (KEY, "d3Jvbmcga2V5", url.split("sig=")[1], parts[0].url.split("sig=")[1]):
        assert secret not in text
