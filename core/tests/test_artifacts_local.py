import os
import time

import pytest

from tracklog.artifacts.local import LocalArtifactRepository, local_path_of
from tracklog.plugins import resolve_repository
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


def _tree(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, dirs, files in os.walk(root) for n in dirs + files)


class _BrokenStream:
    """Stands in for an upload whose connection drops after the first chunk."""

    def __init__(self):
        self.calls = 0

    def read(self, n=-1):
        self.calls += 1
        if self.calls > 1:
            raise ConnectionResetError("network cut")
        return b"partial"


def test_failed_write_removes_the_directories_it_created(tmp_path):
    """A write that fails leaves no new empty directory; existing ones stay."""
    (tmp_path / "kept").mkdir()
    repo = LocalArtifactRepository(str(tmp_path))
    with pytest.raises(ConnectionResetError):
        repo.write_artifact("kept/new/deeper/f.bin", _BrokenStream())
    assert _tree(tmp_path) == ["kept"]


def test_path_too_long_for_the_file_system_is_refused_and_leaves_nothing(tmp_path):
    """Under a root so deep that a valid artifact path exceeds the system's path limit,
    the write is INVALID_PARAMETER_VALUE (not a 500) and no directory is left behind."""
    from tracklog.errors import ErrorCode, TracklogError

    root = tmp_path.joinpath(*["r" * 250] * 14)  # ~3,500 characters
    root.mkdir(parents=True)
    repo = LocalArtifactRepository(str(root))
    path = "/".join(["p" * 60] * 12) + "/f.txt"  # within the contract's limits
    with pytest.raises(TracklogError) as excinfo:
        repo.write_artifact(path, _BrokenStream())
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert "too long" in excinfo.value.message
    assert os.listdir(root) == []


def test_listing_skips_dangling_and_escaping_symlinks(tmp_path):
    """A dangling symlink and symlinks leading outside the root are not listed (nor their
    target's size); a symlink to a file inside the root is listed like the file."""
    from tracklog.entities import FileInfo

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"s" * 1234)
    root = tmp_path / "root"
    run = root / "1" / "r" / "artifacts"
    run.mkdir(parents=True)
    (run / "real.txt").write_bytes(b"real")
    os.symlink(run / "missing", run / "dangling")
    os.symlink(outside / "secret.bin", run / "escape.bin")
    os.symlink(outside, run / "escape_dir")
    os.symlink(run / "real.txt", run / "alias.txt")
    repo = LocalArtifactRepository(str(root))
    assert repo.list_artifacts("1/r/artifacts") == [
        FileInfo("1/r/artifacts/alias.txt", False, 4),
        FileInfo("1/r/artifacts/real.txt", False, 4),
    ]


def test_verify_refuses_a_file_as_root_or_parent(tmp_path):
    """verify() names the destination and what is in the way, in one line; a root that
    does not exist yet passes if it can be created."""
    from tracklog.errors import TracklogError

    (tmp_path / "plain").write_text("x")
    with pytest.raises(TracklogError, match="is a file, not a directory"):
        LocalArtifactRepository(str(tmp_path / "plain")).verify()
    with pytest.raises(TracklogError, match=r"its parent .*plain is a file"):
        LocalArtifactRepository(str(tmp_path / "plain" / "below")).verify()
    os.symlink(tmp_path / "gone", tmp_path / "broken")
    with pytest.raises(TracklogError, match="is a broken symlink, not a directory"):
        LocalArtifactRepository(str(tmp_path / "broken")).verify()
    LocalArtifactRepository(str(tmp_path / "not" / "yet")).verify(probe_write=True)
    assert not (tmp_path / "not" / "yet").exists() or _tree(tmp_path / "not" / "yet") == []


def test_remove_stale_temp_files(tmp_path):
    """Only upload temporaries untouched for the given age are removed, at any depth;
    fresh ones (an upload in progress), artifacts and anything behind a symlink stay."""
    root = tmp_path / "root"
    deep = root / "1" / "r" / "artifacts" / "model"
    deep.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    old = time.time() - 7200
    stale = [root / ".tracklog-tmp-a", deep / ".tracklog-tmp-b", outside / ".tracklog-tmp-c",
             root / ".tracklog-probe-d"]
    for path in stale:
        path.write_bytes(b"x")
        os.utime(path, (old, old))
    (deep / ".tracklog-tmp-live").write_bytes(b"uploading")
    (deep / "MLmodel").write_bytes(b"m")
    os.utime(deep / "MLmodel", (old, old))
    os.symlink(outside, root / "link")
    repo = LocalArtifactRepository(str(root))
    assert repo.remove_stale_temp_files(3600) == 3
    assert sorted(os.listdir(deep)) == [".tracklog-tmp-live", "MLmodel"]
    assert not (root / ".tracklog-tmp-a").exists()
    assert (outside / ".tracklog-tmp-c").exists()
