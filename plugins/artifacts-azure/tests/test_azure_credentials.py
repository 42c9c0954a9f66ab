"""Credentials are chosen in the documented order, and the timeout setting is applied."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tracklog.artifacts import PresignedDownloadRepository
from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_azure.factory import open_repository

from .conftest import ACCOUNT, KEY

WRONG_KEY = "d3Jvbmcga2V5IGZvciB0aGUgdGVzdHMgb25seQ=="


def _round_trip(repo) -> bytes:
    repo.write_artifact("probe.txt", io.BytesIO(b"probe"))
    with repo.open_artifact("probe.txt") as f:
        return f.read()


def _transport(repo):
    return repo.service._pipeline._transport


def test_connection_string_comes_first(azure_env, prefix, monkeypatch):
    """With both set, the connection string is used: a wrong access key changes nothing."""
    monkeypatch.setenv("AZURE_STORAGE_ACCESS_KEY", WRONG_KEY)
    repo = open_repository(azure_env.uri(prefix))
    assert repo.credentials.kind == "connection string"
    assert _round_trip(repo) == b"probe"
    assert isinstance(repo, PresignedDownloadRepository)


def test_access_key_second(azure_env, prefix, monkeypatch):
    """Without a connection string the access key signs requests for the URI's account
    (TRACKLOG_AZURE_BLOB_ENDPOINT points the account URL at Azurite)."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCESS_KEY", KEY)
    monkeypatch.setenv("TRACKLOG_AZURE_BLOB_ENDPOINT", azure_env.endpoint)
    repo = open_repository(azure_env.uri(prefix))
    assert repo.credentials.kind == "access key"
    assert _round_trip(repo) == b"probe"
    assert isinstance(repo, PresignedDownloadRepository)


def test_access_key_account_url_comes_from_the_uri(azure_env, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCESS_KEY", KEY)
    repo = open_repository("abfss://fs@myaccount.dfs.core.windows.net/p")
    assert repo.service.url == "https://myaccount.blob.core.windows.net/"
    assert repo.service.account_name == "myaccount"


def test_wrong_access_key_is_permission_denied(azure_env, prefix, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCESS_KEY", WRONG_KEY)
    monkeypatch.setenv("TRACKLOG_AZURE_BLOB_ENDPOINT", azure_env.endpoint)
    repo = open_repository(azure_env.uri(prefix))
    with pytest.raises(TracklogError) as excinfo:
        _round_trip(repo)
    assert excinfo.value.error_code == ErrorCode.PERMISSION_DENIED
    assert WRONG_KEY not in str(excinfo.value)
    assert azure_env.uri(prefix) in excinfo.value.message


def test_default_azure_credential_last(azure_env, monkeypatch):
    """Checked by what is constructed (no Azure AD can be reached here): with neither
    variable set, the client holds a DefaultAzureCredential and signs SAS with a user
    delegation key."""
    from azure.identity import DefaultAzureCredential

    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    repo = open_repository("wasbs://c@acct.blob.core.windows.net/p")
    assert repo.credentials.kind == "DefaultAzureCredential"
    assert repo.credentials.account_key is None
    assert isinstance(repo.service.credential, DefaultAzureCredential)
    assert isinstance(repo, PresignedDownloadRepository)


def test_missing_identity_extra_is_a_clear_error(azure_env, monkeypatch):
    """azure-identity made unimportable (a stand-in for a machine without the extra)."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(TracklogError) as excinfo:
        open_repository("wasbs://c@acct.blob.core.windows.net/p")
    message = excinfo.value.message
    assert "pip install 'tracklog-artifacts-azure[identity]'" in message
    assert "AZURE_STORAGE_CONNECTION_STRING" in message
    assert "wasbs://c@acct.blob.core.windows.net/p" in message


def test_sas_connection_string_works_without_signing_capabilities(azure_env, prefix,
                                                                  monkeypatch):
    """A connection string holding a SAS (no key) reads and writes, but cannot sign URLs:
    the repository then does not offer presigned downloads or multipart uploads."""
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        ACCOUNT, KEY, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, list=True, delete=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"BlobEndpoint={azure_env.endpoint};SharedAccessSignature={sas}")
    repo = open_repository(azure_env.uri(prefix))
    assert not isinstance(repo, PresignedDownloadRepository)
    assert _round_trip(repo) == b"probe"


def test_timeout_default_and_setting(azure_env, monkeypatch):
    uri = azure_env.uri("p")
    assert _transport(open_repository(uri)).connection_config.read_timeout == 600
    monkeypatch.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "42")
    config = _transport(open_repository(uri)).connection_config
    assert (config.timeout, config.read_timeout) == (42, 42)
    monkeypatch.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "-1")
    assert _transport(open_repository(uri)).connection_config.read_timeout is None


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5"])
def test_bad_timeout_names_the_variable(azure_env, monkeypatch, value):
    monkeypatch.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(TracklogError) as excinfo:
        open_repository("wasbs://c@acct.blob.core.windows.net/p")
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT" in excinfo.value.message


def test_container_sas_connection_string_lists_the_root(azure_env, prefix, monkeypatch):
    """A SAS scoped to the container (read, write, list, delete) is enough for every
    repository operation, the start check on the root included."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(
        ACCOUNT, "tracklog", account_key=KEY,
        permission=ContainerSasPermissions(read=True, write=True, list=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"BlobEndpoint={azure_env.endpoint};SharedAccessSignature={sas}")
    repo = open_repository(azure_env.uri(prefix))
    root = repo.file_info("")
    assert root is not None and root.is_dir
    assert _round_trip(repo) == b"probe"
    assert [f.path for f in repo.list_artifacts()] == ["probe.txt"]
    repo.delete_artifacts()
    assert repo.list_artifacts() == []


def test_default_azure_credential_without_an_identity(azure_env, monkeypatch):
    """On this machine DefaultAzureCredential finds no identity (no Azure AD, no CLI, no
    managed identity): the first request fails with one UNAUTHENTICATED line."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    uri = "wasbs://c@acct.blob.core.windows.net/p"
    repo = open_repository(uri, client_options={"retry_total": 0})
    with pytest.raises(TracklogError) as excinfo:
        repo.list_artifacts()
    assert excinfo.value.error_code == ErrorCode.UNAUTHENTICATED
    assert uri in excinfo.value.message
    assert "\n" not in excinfo.value.message


def test_repositories_of_one_account_share_a_client(azure_env, prefix, monkeypatch):
    """The server opens a repository per request for artifact URIs outside the proxy: they
    share one client (and so one credential and its tokens) while the settings stay."""
    first = open_repository(azure_env.uri(prefix))
    second = open_repository(azure_env.uri(prefix + "/other", container="another"))
    assert second.service is first.service
    monkeypatch.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "30")
    third = open_repository(azure_env.uri(prefix))
    assert third.service is not first.service
    assert _transport(third).connection_config.read_timeout == 30
