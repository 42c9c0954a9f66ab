"""Settings from the environment: each malformed value is refused when the repository is
created, naming its variable, before any request is made."""

import pytest

from tracklog.errors import ErrorCode, TracklogError
from tracklog_artifacts_s3.repository import S3ArtifactRepository, parse_s3_uri


def _refused(match: str) -> TracklogError:
    with pytest.raises(TracklogError, match=match) as excinfo:
        S3ArtifactRepository("s3://bucket/prefix")
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "\n" not in excinfo.value.message
    return excinfo.value


@pytest.mark.parametrize("value", ["{not json", "[1, 2]", '"text"', "42"])
def test_malformed_extra_args_name_the_variable(s3_env, monkeypatch, value):
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", value)
    _refused("MLFLOW_S3_UPLOAD_EXTRA_ARGS")


def test_unknown_extra_arg_is_named(s3_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"ContentType": "a/b", "Bogus": 1}')
    err = _refused("MLFLOW_S3_UPLOAD_EXTRA_ARGS")
    assert "Bogus" in err.message and "ContentType" not in err.message


def test_ignore_tls_and_ca_bundle_together_are_refused(s3_env, monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    err = _refused("MLFLOW_S3_IGNORE_TLS")
    assert "AWS_CA_BUNDLE" in err.message


def test_missing_ca_bundle_is_refused(s3_env, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "nope.pem"))
    _refused("AWS_CA_BUNDLE")


def test_ignore_tls_must_be_a_boolean(s3_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "maybe")
    _refused("MLFLOW_S3_IGNORE_TLS")


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_presigned_ttl_must_be_positive(s3_env, monkeypatch, value):
    monkeypatch.setenv("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS", value)
    _refused("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS")


def test_region_and_endpoint_come_from_the_environment(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    repo = S3ArtifactRepository("s3://bucket/prefix")
    assert repo.client.meta.region_name == "eu-west-3"
    assert repo.client.meta.endpoint_url == s3_env.endpoint


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/a/b/", ("bucket", "a/b")),
    ],
)
def test_parse_s3_uri(uri, expected):
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3:///prefix", "gs://bucket/x", "s3://bucket/x?y=1"])
def test_parse_s3_uri_refuses(uri):
    with pytest.raises(TracklogError) as excinfo:
        parse_s3_uri(uri)
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE


def test_plugin_registers_without_importing_boto3():
    """Registration is cheap: boto3 is imported only when a repository is created."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tracklog import plugins\n"
        "plugins.load_plugins()\n"
        "plugins.artifact_repository_factory('s3://b/p')\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_repositories_share_a_client_per_settings(s3_env, monkeypatch):
    """The server opens a repository per request for s3:// run roots: one client serves
    them all, and a change of settings or credentials gets a client of its own."""
    first = S3ArtifactRepository("s3://bucket/a")
    assert S3ArtifactRepository("s3://other/b").client is first.client
    monkeypatch.setenv("MLFLOW_S3_EXPECTED_BUCKET_OWNER", "123456789012")
    owned = S3ArtifactRepository("s3://bucket/a")
    assert owned.client is not first.client
    monkeypatch.delenv("MLFLOW_S3_EXPECTED_BUCKET_OWNER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another")
    assert S3ArtifactRepository("s3://bucket/a").client is not first.client


def test_presigned_ttl_is_a_plugin_option_under_both_names():
    from tracklog.plugins import plugin_infos
    from tracklog_artifacts_s3.settings import read_settings

    legacy = "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS"
    own = "TRACKLOG_ARTIFACTS_S3_PRESIGNED_DOWNLOAD_TTL"
    assert read_settings({}).presigned_ttl == 300
    assert read_settings({legacy: "60"}).presigned_ttl == 60
    assert read_settings({own: "90", legacy: "60"}).presigned_ttl == 90
    with pytest.raises(TracklogError, match=own):
        read_settings({own: "0"})
    (info,) = [i for i in plugin_infos() if i.name == "artifacts-s3"]
    assert [(o["flag"], o["environment"]) for o in info.options] == [
        ("--artifacts-s3-presigned-download-ttl", [own, legacy])]
