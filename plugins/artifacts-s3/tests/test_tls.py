"""TLS options against moto serving HTTPS with a certificate of the test's own CA-less
self-signed kind: refused by default (a clear one-line error), accepted with
AWS_CA_BUNDLE naming the certificate, or with MLFLOW_S3_IGNORE_TLS."""

from __future__ import annotations

import io

import boto3
import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog.testing.tls import self_signed
from tracklog_artifacts_s3.repository import S3ArtifactRepository


@pytest.fixture(scope="module")
def tls_moto(tmp_path_factory, moto_starter):
    folder = tmp_path_factory.mktemp("moto-tls")
    cert_path, key_path = self_signed(folder)
    cert, key = str(cert_path), str(key_path)
    moto = moto_starter(folder / "moto.log", "-c", cert, "-k", key, scheme="https")
    try:
        boto3.client("s3", endpoint_url=moto.endpoint, verify=cert, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     ).create_bucket(Bucket="secure")
        yield moto, cert
    finally:
        moto.stop()


@pytest.fixture
def tls_env(tls_moto, s3_env, monkeypatch):
    moto, cert = tls_moto
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto.endpoint)
    return cert


def _round_trip() -> bytes:
    repo = S3ArtifactRepository("s3://secure/tls")
    repo.write_artifact("f.txt", io.BytesIO(b"over tls"))
    return b"".join(repo.iter_artifact("f.txt"))


def test_untrusted_certificate_is_a_clear_error(tls_env):
    repo = S3ArtifactRepository("s3://secure/tls")
    with pytest.raises(TracklogError) as excinfo:
        repo.file_info("")
    assert excinfo.value.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
    assert "TLS verification failed" in excinfo.value.message
    assert "s3://secure/tls" in excinfo.value.message


def test_ca_bundle_trusts_the_certificate(tls_env, monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", tls_env)
    assert _round_trip() == b"over tls"


def test_ignore_tls_skips_verification(tls_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    assert _round_trip() == b"over tls"
