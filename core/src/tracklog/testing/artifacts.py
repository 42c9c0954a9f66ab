"""Conformance tests for artifact repositories.

How a plugin author uses it — a whole test module::

    import pytest
    from tracklog.testing.artifacts import ArtifactRepositoryConformance

    class TestMyRepository(ArtifactRepositoryConformance):
        @pytest.fixture
        def repo(self, my_service):
            # a fresh, empty repository rooted somewhere private to this test
            yield MyRepository(f"my://{my_service.bucket}/{uuid.uuid4().hex}")

Every test builds the standard tree below through the public API, then reads it back
through the public API::

    <root>/
        a.txt               "alpha"
        empty.bin           (0 bytes)
        dir/
            b.txt           "bravo"
            sub/
                c.json      '{"k": 1}'
                deep/d.bin  1,000 pseudo-random bytes

Optional behaviour is declared with :class:`ArtifactRequirements`; a test that needs a
capability the repository does not declare is skipped with that capability's name. To
bypass a single test, override the method in the subclass.

Beyond one repository object, the kit checks that a second repository opened from the
same URI through the installed plugins (:func:`tracklog.artifacts.resolve_repository`)
sees what the first wrote: the repository's plugin must be installed in the test
environment. The multipart and presigned-download tests talk to the URLs the repository
hands out over plain HTTP with ``httpx`` (``pip install tracklog-core[testing]``); the
expiry test shortens :attr:`~tracklog.artifacts.PresignedDownloadRepository.presigned_url_lifetime`
to one second and expects the service to refuse the URL a few seconds later.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tracklog.artifacts.base import ArtifactRepository, CompletedPart
from tracklog.entities import FileInfo
from tracklog.errors import ErrorCode, TracklogError

STANDARD_TREE: dict[str, bytes] = {
    "a.txt": b"alpha",
    "empty.bin": b"",
    "dir/b.txt": b"bravo",
    "dir/sub/c.json": b'{"k": 1}',
    "dir/sub/deep/d.bin": random.Random(7).randbytes(1000),
}

#: Paths every repository must refuse with INVALID_PARAMETER_VALUE, whatever the operation.
UNSAFE_PATHS = [
    "..",
    "../escape.txt",
    "dir/../../escape.txt",
    "/etc/passwd",
    "\\windows\\path",
    "dir\\file.txt",
    "C:/file.txt",
    "c:file.txt",
    "%2e%2e/escape.txt",
    "dir/%2E%2E/%2e%2e/escape.txt",
    "%252e%252e/escape.txt",
    "dir%2f..%2f..%2fescape.txt",
    "file\x00.txt",
    "dir/file#frag",
]

#: Paths over the contract's limits (a 256-byte name, 129 levels, 1,025 bytes in all).
OVERSIZED_PATHS = ["a" * 256, "dir/" + "é" * 128, "d/" * 128 + "x", "abcdefg/" * 128 + "x"]


@dataclass(frozen=True)
class ArtifactRequirements:
    """Optional behaviour an artifact repository declares.

    :param empty_directories: a directory with no files can exist (local file systems,
        SFTP, FTP); object stores cannot hold one and list it as absent.
    :param large_files: files of tens of megabytes are cheap enough to test here.
    :param multipart_upload: the repository is a
        :class:`~tracklog.artifacts.MultipartUploadRepository` and the service accepts
        part uploads to its presigned URLs (parts of :data:`MULTIPART_PART_SIZE` bytes).
    :param presigned_download: the repository is a
        :class:`~tracklog.artifacts.PresignedDownloadRepository` whose URLs the service
        serves.
    :param presigned_expiry_enforced: the service refuses a presigned URL once its
        lifetime has passed (emulators often do not check).
    :param listing_page_size: how many entries the service returns in one listing page;
        the kit lists one more than that. None skips the test.
    """

    empty_directories: bool = False
    large_files: bool = True
    multipart_upload: bool = False
    presigned_download: bool = False
    presigned_expiry_enforced: bool = False
    listing_page_size: int | None = None


#: The size of every multipart part but the last: S3's smallest allowed part.
MULTIPART_PART_SIZE = 5 * 1024 * 1024


def _write(repo: ArtifactRepository, path: str, data: bytes) -> None:
    repo.write_artifact(path, io.BytesIO(data))


def _read(repo: ArtifactRepository, path: str) -> bytes:
    with repo.open_artifact(path) as f:
        return f.read()


def _walk(repo: ArtifactRepository, path: str = "") -> dict[str, int | None]:
    """Every file below ``path`` with its size, found through one-level listings."""
    out: dict[str, int | None] = {}
    for entry in repo.list_artifacts(path):
        if entry.is_dir:
            out.update(_walk(repo, entry.path))
        else:
            out[entry.path] = entry.file_size
    return out


def _http():
    import httpx

    return httpx.Client(timeout=120)


def _expect_code(code: ErrorCode, func: Callable[..., object], *args: Any) -> TracklogError:
    with pytest.raises(TracklogError) as excinfo:
        func(*args)
    assert excinfo.value.error_code == code, excinfo.value
    return excinfo.value


class ArtifactRepositoryConformance:
    """Mix into a test class and provide a ``repo`` fixture yielding an empty repository."""

    requirements = ArtifactRequirements()

    def _need(self, capability: str) -> None:
        if not getattr(self.requirements, capability):
            pytest.skip(f"repository does not declare {capability}")

    @pytest.fixture
    def tree(self, repo: ArtifactRepository) -> ArtifactRepository:
        for path, data in STANDARD_TREE.items():
            _write(repo, path, data)
        return repo

    # -- writing and reading ------------------------------------------------------------

    def test_round_trip_every_file(self, tree):
        """Every file of the standard tree reads back byte for byte."""
        for path, data in STANDARD_TREE.items():
            assert _read(tree, path) == data, path

    def test_iter_artifact_streams_chunks(self, tree):
        """iter_artifact yields the file in chunks no larger than asked."""
        chunks = list(tree.iter_artifact("dir/sub/deep/d.bin", chunk_size=64))
        assert b"".join(chunks) == STANDARD_TREE["dir/sub/deep/d.bin"]
        assert all(0 < len(c) <= 64 for c in chunks)

    def test_overwrite_replaces_content(self, tree):
        """Writing an existing path replaces the file, shorter content included."""
        _write(tree, "dir/b.txt", b"b")
        assert _read(tree, "dir/b.txt") == b"b"
        assert tree.file_info("dir/b.txt") == FileInfo("dir/b.txt", False, 1)

    def test_log_artifact_and_log_artifacts(self, repo, tmp_path):
        """log_artifact keeps the base name; log_artifacts copies a nested local tree."""
        single = tmp_path / "model.pkl"
        single.write_bytes(b"pickle")
        repo.log_artifact(single)
        repo.log_artifact(single, "nested/dir")
        local = tmp_path / "tree"
        for path, data in STANDARD_TREE.items():
            (local / path).parent.mkdir(parents=True, exist_ok=True)
            (local / path).write_bytes(data)
        repo.log_artifacts(local, "copy")
        assert _read(repo, "model.pkl") == b"pickle"
        assert _read(repo, "nested/dir/model.pkl") == b"pickle"
        files = _walk(repo, "copy")
        assert files == {f"copy/{p}": len(d) for p, d in STANDARD_TREE.items()}

    def test_large_file_streams(self, repo, tmp_path):
        """A 24 MiB file goes in from a stream and comes back with the same digest."""
        self._need("large_files")
        size = 24 * 1024 * 1024
        src = tmp_path / "big.bin"
        digest = hashlib.sha256()
        rng = random.Random(1)
        with open(src, "wb") as f:
            for _ in range(size // (1024 * 1024)):
                block = rng.randbytes(1024 * 1024)
                digest.update(block)
                f.write(block)
        repo.log_artifact(src, "big")
        assert repo.file_info("big/big.bin") == FileInfo("big/big.bin", False, size)
        back = hashlib.sha256()
        total = 0
        for chunk in repo.iter_artifact("big/big.bin"):
            back.update(chunk)
            total += len(chunk)
        assert total == size
        assert back.hexdigest() == digest.hexdigest()

    # -- listing ------------------------------------------------------------------------

    def test_list_root_one_level_with_sizes(self, tree):
        """The root lists its files with sizes and its directories, one level only."""
        assert tree.list_artifacts() == [
            FileInfo("a.txt", False, 5),
            FileInfo("dir", True, None),
            FileInfo("empty.bin", False, 0),
        ]

    def test_list_nested_paths_are_root_relative(self, tree):
        """Listing a sub-directory gives paths relative to the repository root."""
        assert tree.list_artifacts("dir") == [
            FileInfo("dir/b.txt", False, 5),
            FileInfo("dir/sub", True, None),
        ]
        assert tree.list_artifacts("dir/sub/") == [
            FileInfo("dir/sub/c.json", False, 8),
            FileInfo("dir/sub/deep", True, None),
        ]

    def test_list_missing_or_file_is_empty(self, tree):
        """A missing directory or a file path lists as empty."""
        assert tree.list_artifacts("nope") == []
        assert tree.list_artifacts("dir/nope/deeper") == []
        assert tree.list_artifacts("a.txt") == []

    def test_list_empty_repository(self, repo):
        """A fresh repository lists nothing at its root."""
        assert repo.list_artifacts() == []
        assert repo.list_artifacts("") == []

    def test_walk_finds_whole_tree(self, tree):
        """Recursive listing through one-level calls finds exactly the standard tree."""
        assert _walk(tree) == {p: len(d) for p, d in STANDARD_TREE.items()}

    def test_file_info(self, tree):
        """file_info tells files (with size), directories and absence apart."""
        assert tree.file_info("dir/sub/c.json") == FileInfo("dir/sub/c.json", False, 8)
        assert tree.file_info("dir/sub") == FileInfo("dir/sub", True, None)
        assert tree.file_info("missing.txt") is None
        assert tree.file_info("").is_dir

    def test_empty_directory(self, repo, tmp_path):
        """Where declared, an uploaded empty local directory is listed as a directory."""
        self._need("empty_directories")
        local = tmp_path / "with_empty"
        (local / "hollow").mkdir(parents=True)
        (local / "f.txt").write_bytes(b"f")
        repo.log_artifacts(local, "up")
        assert repo.list_artifacts("up") == [
            FileInfo("up/f.txt", False, 1),
            FileInfo("up/hollow", True, None),
        ]

    # -- reading errors -----------------------------------------------------------------

    def test_open_missing_is_not_found(self, tree):
        """Opening a missing file is RESOURCE_DOES_NOT_EXIST naming the path."""
        err = _expect_code(ErrorCode.RESOURCE_DOES_NOT_EXIST, tree.open_artifact, "dir/zzz.txt")
        assert "dir/zzz.txt" in err.message

    def test_open_directory_is_invalid(self, tree):
        """Opening a directory is INVALID_PARAMETER_VALUE, not a crash."""
        _expect_code(ErrorCode.INVALID_PARAMETER_VALUE, tree.open_artifact, "dir")
        _expect_code(ErrorCode.INVALID_PARAMETER_VALUE, tree.open_artifact, "")

    def test_write_to_directory_name_is_invalid(self, tree):
        """A write to a path ending in '/' or to the root is refused and writes nothing."""
        _expect_code(ErrorCode.INVALID_PARAMETER_VALUE, _write, tree, "dir/", b"x")
        _expect_code(ErrorCode.INVALID_PARAMETER_VALUE, _write, tree, "", b"x")
        assert _walk(tree) == {p: len(d) for p, d in STANDARD_TREE.items()}

    # -- downloads ----------------------------------------------------------------------

    def test_download_file(self, tree, tmp_path):
        """Downloading a file recreates its relative path under the destination."""
        local = tree.download_artifacts("dir/sub/c.json", tmp_path)
        assert local == os.path.join(tmp_path, "dir", "sub", "c.json")
        with open(local, "rb") as f:
            assert f.read() == STANDARD_TREE["dir/sub/c.json"]

    def test_download_directory_tree(self, tree, tmp_path):
        """Downloading a directory brings every file below it, byte for byte."""
        local = tree.download_artifacts("dir", tmp_path)
        assert local == os.path.join(tmp_path, "dir")
        for path, data in STANDARD_TREE.items():
            if path.startswith("dir/"):
                with open(os.path.join(tmp_path, *path.split("/")), "rb") as f:
                    assert f.read() == data, path
        assert not os.path.exists(os.path.join(tmp_path, "a.txt"))

    def test_download_missing_is_not_found(self, tree, tmp_path):
        """Downloading a missing path is RESOURCE_DOES_NOT_EXIST."""
        _expect_code(
            ErrorCode.RESOURCE_DOES_NOT_EXIST, tree.download_artifacts, "ghost", tmp_path
        )

    # -- deletes ------------------------------------------------------------------------

    def test_delete_file(self, tree):
        """Deleting a file removes exactly that file."""
        tree.delete_artifacts("dir/b.txt")
        expected = {p: len(d) for p, d in STANDARD_TREE.items() if p != "dir/b.txt"}
        assert _walk(tree) == expected

    def test_delete_directory_tree(self, tree):
        """Deleting a directory removes everything below it and nothing else."""
        tree.delete_artifacts("dir/sub")
        assert _walk(tree) == {"a.txt": 5, "empty.bin": 0, "dir/b.txt": 5}
        assert tree.file_info("dir/sub") is None

    def test_delete_does_not_touch_prefix_siblings(self, tree):
        """Deleting 'dir' leaves 'dir2' alone (prefix is not a directory)."""
        _write(tree, "dir2/x.txt", b"x")
        _write(tree, "dirx.txt", b"y")
        tree.delete_artifacts("dir")
        assert _walk(tree) == {"a.txt": 5, "empty.bin": 0, "dir2/x.txt": 1, "dirx.txt": 1}

    def test_delete_missing_is_quiet(self, tree):
        """Deleting something absent is not an error and changes nothing."""
        tree.delete_artifacts("nothing/here")
        assert _walk(tree) == {p: len(d) for p, d in STANDARD_TREE.items()}

    def test_delete_root_empties_repository(self, tree):
        """Deleting the root removes every artifact; the repository stays usable."""
        tree.delete_artifacts()
        assert tree.list_artifacts() == []
        _write(tree, "again.txt", b"again")
        assert _read(tree, "again.txt") == b"again"

    # -- start-up check -----------------------------------------------------------------

    def test_verify_passes_on_fresh_repository(self, repo):
        """verify() and verify(probe_write=True) pass on a usable repository and leave
        nothing listable behind."""
        repo.verify()
        repo.verify(probe_write=True)
        assert repo.list_artifacts() == []

    # -- path safety --------------------------------------------------------------------

    @pytest.mark.parametrize("bad", UNSAFE_PATHS)
    def test_unsafe_paths_refused_everywhere(self, tree, tmp_path, bad):
        """Every operation refuses an unsafe path with INVALID_PARAMETER_VALUE and
        writes or deletes nothing."""
        code = ErrorCode.INVALID_PARAMETER_VALUE
        _expect_code(code, _write, tree, bad, b"evil")
        _expect_code(code, tree.open_artifact, bad)
        _expect_code(code, tree.list_artifacts, bad)
        _expect_code(code, tree.file_info, bad)
        _expect_code(code, tree.delete_artifacts, bad)
        _expect_code(code, tree.download_artifacts, bad, tmp_path)
        src = tmp_path / "f.txt"
        src.write_bytes(b"evil")
        _expect_code(code, tree.log_artifact, src, bad)
        assert _walk(tree) == {p: len(d) for p, d in STANDARD_TREE.items()}

    @pytest.mark.parametrize("bad", OVERSIZED_PATHS, ids=["name", "utf8-name", "deep", "long"])
    def test_oversized_paths_refused_before_writing(self, repo, bad):
        """A path over the name, length or depth limit is INVALID_PARAMETER_VALUE naming
        the field, and leaves nothing behind; a name of exactly 255 bytes is stored."""
        err = _expect_code(ErrorCode.INVALID_PARAMETER_VALUE, _write, repo, bad, b"x")
        assert "'path'" in err.message and "limit" in err.message
        assert repo.list_artifacts() == []
        _write(repo, "n/" + "b" * 255, b"fits")
        assert _read(repo, "n/" + "b" * 255) == b"fits"

    def test_normalised_paths_are_equivalent(self, tree):
        """'dir//sub/./c.json' names the same file as 'dir/sub/c.json'."""
        assert _read(tree, "dir//sub/./c.json") == STANDARD_TREE["dir/sub/c.json"]
        assert tree.list_artifacts("./dir/") == tree.list_artifacts("dir")

    def test_names_with_spaces_and_unicode(self, repo):
        """Spaces, unicode and percent signs in names are kept literally."""
        names = ["with space.txt", "ünïcødé/名前.txt", "100%.txt", "my%20file.txt"]
        for name in names:
            _write(repo, name, name.encode())
        for name in names:
            assert _read(repo, name) == name.encode()
        assert {f.path for f in repo.list_artifacts("ünïcødé")} == {"ünïcødé/名前.txt"}

    # -- the same URI, another repository object ----------------------------------------

    def test_second_repository_sees_writes(self, tree):
        """A repository resolved again from the same URI through the installed plugins
        reads what the first wrote, and the first reads what the second writes,
        overwrites and deletes (no object serves its own stale copy)."""
        from tracklog.plugins import resolve_repository

        other = resolve_repository(tree.artifact_uri)
        assert _walk(other) == {p: len(d) for p, d in STANDARD_TREE.items()}
        assert _read(other, "dir/sub/deep/d.bin") == STANDARD_TREE["dir/sub/deep/d.bin"]
        _write(other, "dir/from-other.txt", b"other")
        assert _read(tree, "dir/from-other.txt") == b"other"
        _write(other, "a.txt", b"overwritten by the other")
        assert _read(tree, "a.txt") == b"overwritten by the other"
        other.delete_artifacts("dir/sub")
        assert not any(p.startswith("dir/sub/") for p in _walk(tree))
        _expect_code(ErrorCode.RESOURCE_DOES_NOT_EXIST, tree.open_artifact, "dir/sub/c.json")

    # -- listings longer than a page ------------------------------------------------------

    def test_listing_follows_every_page(self, repo):
        """A directory with one entry more than the service's page lists whole, files and
        sub-directories alike, and deleting it removes every entry."""
        page = self.requirements.listing_page_size
        if page is None:
            pytest.skip("repository does not declare listing_page_size")
        count = page + 1
        # Odd entries are sub-directories, so both kinds of entry span the pages.
        paths = [
            f"many/d{i:05d}/x.txt" if i % 2 else f"many/f{i:05d}.txt" for i in range(count)
        ]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda p: _write(repo, p, b"x"), paths))
        expected = [
            FileInfo(f"many/d{i:05d}", True, None) if i % 2
            else FileInfo(f"many/f{i:05d}.txt", False, 1)
            for i in range(count)
        ]
        assert repo.list_artifacts("many") == sorted(expected, key=lambda f: f.path)
        repo.delete_artifacts("many")
        assert repo.list_artifacts("many") == []
        assert repo.list_artifacts() == []

    # -- multipart upload ---------------------------------------------------------------

    def test_multipart_upload_round_trip(self, repo):
        """Parts PUT over plain HTTP to the presigned URLs (the last one first) and then
        completed read back as exactly the bytes sent."""
        self._need("multipart_upload")
        data = random.Random(3).randbytes(MULTIPART_PART_SIZE + 4321)
        chunks = [data[:MULTIPART_PART_SIZE], data[MULTIPART_PART_SIZE:]]
        upload_id, credentials = repo.create_multipart_upload("mpu/model.bin", len(chunks))
        assert [c.part_number for c in credentials] == [1, 2]
        parts = []
        with _http() as http:
            for credential, chunk in reversed(list(zip(credentials, chunks, strict=True))):
                response = http.put(credential.url, content=chunk, headers=credential.headers)
                assert response.status_code in (200, 201), response.text[:300]
                etag = response.headers.get("etag", "")
                parts.append(CompletedPart(credential.part_number, etag, credential.url))
        parts.sort(key=lambda p: p.part_number)
        repo.complete_multipart_upload("mpu/model.bin", upload_id, parts)
        assert repo.file_info("mpu/model.bin") == FileInfo("mpu/model.bin", False, len(data))
        assert hashlib.sha256(_read(repo, "mpu/model.bin")).digest() == (
            hashlib.sha256(data).digest()
        )

    def test_multipart_abort_leaves_nothing(self, repo):
        """An aborted upload with a part already sent leaves nothing listable, and
        completing it afterwards is a TracklogError."""
        self._need("multipart_upload")
        upload_id, credentials = repo.create_multipart_upload("mpu/aborted.bin", 2)
        with _http() as http:
            response = http.put(credentials[0].url, content=b"p" * MULTIPART_PART_SIZE,
                                headers=credentials[0].headers)
        assert response.status_code in (200, 201), response.text[:300]
        etag = response.headers.get("etag", "")
        repo.abort_multipart_upload("mpu/aborted.bin", upload_id)
        assert repo.list_artifacts() == []
        assert repo.file_info("mpu/aborted.bin") is None
        with pytest.raises(TracklogError):
            repo.complete_multipart_upload(
                "mpu/aborted.bin", upload_id, [CompletedPart(1, etag, credentials[0].url)]
            )
        assert repo.list_artifacts() == []

    # -- presigned downloads ------------------------------------------------------------

    def test_presigned_download_returns_bytes(self, tree):
        """A presigned URL serves exactly the file's bytes; its size is reported; a
        missing file is RESOURCE_DOES_NOT_EXIST."""
        self._need("presigned_download")
        data = STANDARD_TREE["dir/sub/deep/d.bin"]
        url, headers, size = tree.presigned_download_url("dir/sub/deep/d.bin")
        assert size == len(data)
        with _http() as http:
            response = http.get(url, headers=headers)
        assert response.status_code == 200, response.text[:300]
        assert response.content == data
        _expect_code(ErrorCode.RESOURCE_DOES_NOT_EXIST, tree.presigned_download_url, "ghost")

    def test_presigned_download_expires(self, tree):
        """A presigned URL with a one-second lifetime is refused a few seconds later."""
        self._need("presigned_download")
        if not self.requirements.presigned_expiry_enforced:
            pytest.skip(
                "the service does not enforce the expiry of presigned URLs "
                "(declare presigned_expiry_enforced where it does)"
            )
        tree.presigned_url_lifetime = 1
        url, headers, _ = tree.presigned_download_url("a.txt")
        time.sleep(3)
        with _http() as http:
            response = http.get(url, headers=headers)
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
        assert response.content != STANDARD_TREE["a.txt"]
