"""Path and location rules in isolation: the deletion rule, the path limits, and every
spelling of a forbidden host."""

import pytest

from tracklog.artifacts.locations import check_artifact_location, forbidden_host
from tracklog.artifacts.paths import check_deletable, inside_artifacts_dir, safe_relpath
from tracklog.errors import TracklogError


@pytest.mark.parametrize("path, inside", [
    ("", False), ("1", False), ("1/abc", False), ("1/abc/artifacts", False),
    ("1/abc/artifacts/x", True), ("1/abc/artifacts/d/e", True),
    ("1/models/m-1/artifacts", False), ("1/models/m-1/artifacts/MLmodel", True),
    ("artifacts/x", False), ("artifacts/abc/artifacts/x", True),
    ("team/1/abc/artifacts/f", True),
])
def test_inside_artifacts_dir(path, inside):
    assert inside_artifacts_dir(path) is inside
    if inside:
        check_deletable(path)
    else:
        with pytest.raises(TracklogError, match="is refused"):
            check_deletable(path)


def test_limit_messages_name_the_field():
    with pytest.raises(TracklogError, match=r"in 'artifact_path'.*255 bytes"):
        safe_relpath("a" * 256, "artifact_path")
    with pytest.raises(TracklogError, match=r"129 components deep; the limit is 128"):
        safe_relpath("d/" * 128 + "x")
    assert safe_relpath("./" * 500 + "x") == "x"  # what normalisation removes is free


@pytest.mark.parametrize("host", [
    "169.254.169.254", "169.254.0.1", "2852039166", "0xa9fea9fe", "0xA9.0xFE.0xA9.0xFE",
    "0251.0376.0251.0376", "169.254.43518", "169.16689662", "[fe80::1]", "fe80::1%eth0",
    "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
    "metadata.google.internal", "Metadata.Google.Internal.", "metadata", "instance-data",
    "100.100.100.200", "fd00:ec2::254", "0.0.0.0", "::", "224.0.0.1",
    "169%2e254%2e169%2e254",
])
def test_forbidden_hosts(host):
    assert forbidden_host(host) is not None


@pytest.mark.parametrize("host", [
    "10.0.0.5", "192.168.1.20", "172.16.0.1", "127.0.0.1", "::1", "localhost",
    "minio.internal", "s3.eu-west-1.amazonaws.com", "files.corp.example", "my-bucket",
    "1.2.3.4.5", "999.1.1.1", "0x1g",
])
def test_allowed_hosts(host):
    assert forbidden_host(host) is None


def test_operator_configuration_may_name_any_host():
    check_artifact_location("http://169.254.1.1/x", "--default-artifact-root", hosts=False)
    with pytest.raises(TracklogError, match="'--default-artifact-root'"):
        check_artifact_location("mlflow-artifacts:/a/artifacts", "--default-artifact-root",
                                hosts=False)
