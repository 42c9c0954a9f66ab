"""Service failures become one-line TracklogErrors naming the URI and the cause, with the
MLflow code that fits, and never a secret. Real failures from moto where moto can produce
them (a missing bucket, a missing key or upload, an unreachable endpoint, unknown keys,
a wrong secret, denied access with IAM checks on); the rest through botocore's Stubber,
labelled as such."""

from __future__ import annotations

import io

import boto3
import pytest
from botocore.stub import Stubber

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_s3.repository import S3ArtifactRepository

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _error(func, *args) -> TracklogError:
    with pytest.raises(TracklogError) as excinfo:
        func(*args)
    err = excinfo.value
    assert "\n" not in err.message and "Traceback" not in err.message
    assert SECRET not in err.message and "X-Amz-Signature" not in err.message
    return err


def test_missing_bucket_fails_the_start_check(s3_env):
    repo = S3ArtifactRepository("s3://no-such-bucket-here/prefix")
    err = _error(repo.file_info, "")
    assert err.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert "s3://no-such-bucket-here/prefix" in err.message and "NoSuchBucket" in err.message
    for call in (lambda: repo.list_artifacts(), lambda: repo.write_artifact("f", io.BytesIO(b"x"))):
        assert _error(call).error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST


def test_missing_key_and_upload_are_not_found(bucket):
    repo = S3ArtifactRepository(f"s3://{bucket}/p")
    assert _error(repo.open_artifact, "ghost.txt").error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    err = _error(repo.abort_multipart_upload, "ghost.bin", "no-such-upload")
    assert err.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert f"s3://{bucket}/p/ghost.bin" in err.message


def test_unreachable_endpoint(s3_env, monkeypatch, closed_port):
    endpoint = f"http://127.0.0.1:{closed_port}"
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    repo = S3ArtifactRepository("s3://bucket/prefix")
    repo.client.meta.config.retries["total_max_attempts"] = 1
    err = _error(repo.file_info, "")
    assert err.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
    assert err.message.endswith(f"the endpoint {endpoint} is unreachable")


@pytest.fixture(scope="module")
def moto_with_iam(tmp_path_factory, moto_starter):
    """A moto that checks credentials and IAM policies after its first three actions,
    which create a user without permissions, its access key, and a bucket."""
    moto = moto_starter(tmp_path_factory.mktemp("moto-iam") / "moto.log",
                      env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    try:
        admin = {"endpoint_url": moto.endpoint, "region_name": "us-east-1",
                 "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        boto3.client("s3", **admin).create_bucket(Bucket="guarded")
        yield moto, key
    finally:
        moto.stop()


@pytest.mark.parametrize(
    "who, code, cause",
    [
        ("denied", ErrorCode.PERMISSION_DENIED, "AccessDenied"),
        ("unknown", ErrorCode.UNAUTHENTICATED, "InvalidAccessKeyId"),
        ("wrong-secret", ErrorCode.UNAUTHENTICATED, "SignatureDoesNotMatch"),
    ],
)
def test_credentials_refused(moto_with_iam, s3_env, monkeypatch, who, code, cause):
    moto, key = moto_with_iam
    access, secret = {
        "denied": (key["AccessKeyId"], key["SecretAccessKey"]),
        "unknown": ("AKIAUNKNOWNUNKNOWN00", SECRET),
        "wrong-secret": (key["AccessKeyId"], SECRET),
    }[who]
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    repo = S3ArtifactRepository("s3://guarded/runs")
    err = _error(repo.file_info, "")
    assert err.error_code == code
    assert "s3://guarded/runs" in err.message and cause in err.message
    assert _error(repo.write_artifact, "f.txt", io.BytesIO(b"x")).error_code == code


# Stubbed failures (labelled mocks): moto never expires credentials and ignores the
# expected bucket owner, so these answers are injected where the service would send them.


@pytest.mark.parametrize(
    "service_code, status, expected",
    [
        ("ExpiredToken", 400, ErrorCode.UNAUTHENTICATED),
        ("AccessDenied", 403, ErrorCode.PERMISSION_DENIED),  # a bucket of another owner
        ("SlowDown", 503, ErrorCode.TEMPORARILY_UNAVAILABLE),
    ],
)
def test_stubbed_service_errors(s3_env, service_code, status, expected):
    repo = S3ArtifactRepository("s3://bucket/prefix")
    with Stubber(repo.client) as stub:
        stub.add_client_error("list_objects_v2", service_code, "details", status)
        err = _error(repo.list_artifacts)
    assert err.error_code == expected
    assert service_code in err.message and "s3://bucket/prefix" in err.message


def test_no_credentials_at_all(s3_env, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    repo = S3ArtifactRepository("s3://bucket/prefix")
    err = _error(repo.file_info, "")
    assert err.error_code == ErrorCode.UNAUTHENTICATED
    assert "credentials" in err.message
