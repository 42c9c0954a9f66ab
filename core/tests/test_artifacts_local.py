import os

import pytest

from tracklog.artifacts import resolve_repository
from tracklog.artifacts.local import LocalArtifactRepository, local_path_of
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements


class TestLocalArtifactRepository(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(empty_directories=True)

    @pytest.fixture
    def repo(self, tmp_path):
        yield resolve_repository((tmp_path / "root").as_uri())


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("file:///srv/art", "/srv/art"),
        ("file://localhost/srv/art", "/srv/art"),
        ("/srv/art", "/srv/art"),
        ("file:///srv/with%20space", "/srv/with space"),
    ],
)
def test_local_path_of_absolute(uri, expected):
    assert local_path_of(uri) == expected


def test_local_path_of_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_path_of("file:rel/dir") == str(tmp_path / "rel" / "dir")
    assert local_path_of("./rel") == str(tmp_path / "rel")


def test_resolve_plain_path_is_local(tmp_path):
    repo = resolve_repository(str(tmp_path))
    assert isinstance(repo, LocalArtifactRepository)
    assert repo.root == str(tmp_path)


def test_symlink_out_of_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "link")
    repo = LocalArtifactRepository(str(root))
    from tracklog.errors import ErrorCode, TracklogError

    with pytest.raises(TracklogError) as excinfo:
        repo.open_artifact("link/secret.txt")
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE


def test_failed_write_leaves_previous_file(tmp_path):
    """A stream that breaks mid-write leaves the old content and no temporary file."""
    repo = LocalArtifactRepository(str(tmp_path))
    repo.write_artifact("f.bin", open(__file__, "rb"))
    before = (tmp_path / "f.bin").read_bytes()

    class Broken:
        def __init__(self):
            self.calls = 0

        def read(self, n=-1):
            self.calls += 1
            if self.calls > 1:
                raise ConnectionResetError("network cut")  # stands in for a dropped upload
            return b"partial"

    with pytest.raises(ConnectionResetError):
        repo.write_artifact("f.bin", Broken())
    assert (tmp_path / "f.bin").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]
