"""TLS options against moto serving HTTPS with a certificate of the test's own CA-less
self-signed kind: refused by default (a clear one-line error), accepted with
AWS_CA_BUNDLE naming the certificate, or with MLFLOW_S3_IGNORE_TLS."""

from __future__ import annotations

import datetime
import io
import ipaddress

import boto3
import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_s3.repository import S3ArtifactRepository


def _self_signed(folder) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def tls_moto(tmp_path_factory, moto_starter):
    folder = tmp_path_factory.mktemp("moto-tls")
    cert, key = _self_signed(folder)
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
