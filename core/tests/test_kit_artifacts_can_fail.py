"""The artifact kit must catch broken repositories: each broken variant below has one
defect, and the tests named for that defect must fail against it. The variants derive
from a local repository with presigned uploads and downloads (``presigning_local.py``),
which itself passes the whole kit, expiry and paging included."""

import contextlib
import textwrap
from pathlib import Path

import httpx
import pytest

REFERENCE = (Path(__file__).parent / "presigning_local.py").read_text()

BROKEN = {
    "lists_recursively": (
        """
        def _list(self, path):
            out = []
            for root, dirs, files in os.walk(self._abs(path)):
                rel = os.path.relpath(root, self.root).replace(os.sep, "/")
                rel = "" if rel == "." else rel
                out += [FileInfo(f"{rel}/{d}".lstrip("/"), True) for d in dirs]
                out += [FileInfo(f"{rel}/{f}".lstrip("/"), False, 1) for f in files]
            return out
        """,
        ["test_list_root_one_level_with_sizes", "test_list_nested_paths_are_root_relative"],
    ),
    "ignores_overwrite": (
        """
        def _write(self, path, stream):
            if os.path.exists(self._abs(path)):
                return
            super()._write(path, stream)
        """,
        ["test_overwrite_replaces_content"],
    ),
    "deletes_by_prefix": (
        """
        def _delete(self, path):
            for entry in os.listdir(self.root):
                if entry.startswith(path.split("/")[0]):
                    full = os.path.join(self.root, entry)
                    shutil.rmtree(full) if os.path.isdir(full) else os.unlink(full)
        """,
        ["test_delete_does_not_touch_prefix_siblings", "test_delete_file"],
    ),
    "skips_path_checks": (
        """
        def write_artifact(self, path, stream):
            self._write(path, stream)
        """,
        ["test_unsafe_paths_refused_everywhere"],
    ),
    "ignores_path_limits": (
        """
        def write_artifact(self, path, stream):
            self._write(os.path.normpath(path), stream)
        """,
        ["test_oversized_paths_refused_before_writing"],
    ),
    "verify_leaves_its_probe": (
        """
        def verify(self, probe_write=False):
            if probe_write:
                self._write("probe.txt", io.BytesIO(b"probe"))
        """,
        ["test_verify_passes_on_fresh_repository"],
    ),
    "truncates_large_files": (
        """
        def _write(self, path, stream):
            super()._write(path, io.BytesIO(stream.read(8 * 1024 * 1024)))
        """,
        ["test_large_file_streams"],
    ),
    "second_repository_sees_nothing": (
        """
        def __init__(self, uri):
            super().__init__(uri)
            self.artifact_uri = uri + "-elsewhere"
        """,
        ["test_second_repository_sees_writes"],
    ),
    "reads_its_own_writes_from_memory": (
        """
        def _write(self, path, stream):
            data = stream.read()
            self.__dict__.setdefault("written", {})[path] = data
            super()._write(path, io.BytesIO(data))

        def _open(self, path):
            data = self.__dict__.get("written", {}).get(path)
            return io.BytesIO(data) if data is not None else super()._open(path)
        """,
        ["test_second_repository_sees_writes"],
    ),
    "lists_one_page": (
        """
        def _list(self, path):
            return sorted(super()._list(path), key=lambda f: f.path)[:PAGE]
        """,
        ["test_listing_follows_every_page"],
    ),
    "multipart_drops_last_part": (
        """
        def complete_multipart_upload(self, path, upload_id, parts):
            super().complete_multipart_upload(path, upload_id, parts[:-1])
        """,
        ["test_multipart_upload_round_trip"],
    ),
    "multipart_abort_keeps_parts": (
        """
        def abort_multipart_upload(self, path, upload_id):
            super().complete_multipart_upload(path, upload_id, [])
        """,
        ["test_multipart_abort_leaves_nothing"],
    ),
    "presigns_another_file": (
        """
        def presigned_download_url(self, path):
            url, headers, size = super().presigned_download_url("a.txt")
            return url, headers, self.file_info(path).file_size
        """,
        ["test_presigned_download_returns_bytes"],
    ),
    "presigned_urls_never_expire": (
        """
        def presigned_download_url(self, path):
            self.presigned_url_lifetime = 3600
            return super().presigned_download_url(path)
        """,
        ["test_presigned_download_expires"],
    ),
}

KIT_MODULE = """
import io, os, shutil
import pytest
from presigning_local import PresigningLocalRepository
from tracklog.entities import FileInfo
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements

PAGE = 50

class Broken(PresigningLocalRepository):
{body}

class TestBroken(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(
        empty_directories=True,
        multipart_upload=True,
        presigned_download=True,
        presigned_expiry_enforced=True,
        listing_page_size=PAGE,
    )

    @pytest.fixture
    def repo(self, tmp_path):
        yield Broken((tmp_path / "root").as_uri())
"""


@pytest.fixture(scope="module", autouse=True)
def _httpcore_loaded_outside_the_inner_runs():
    """httpx loads httpcore's transport modules on its first request. Made inside an
    in-process run (the kit's HTTP checks), that load would be undone with the run's
    sys.modules snapshot, and the session's later httpx clients would raise httpcore
    errors that httpx no longer recognises. One refused request here loads them first."""
    with contextlib.suppress(httpx.TransportError):
        httpx.get("http://127.0.0.1:9/", timeout=1)


#: The one kit test that sleeps (for a URL to expire): run only where it is the point.
EXPIRY_TEST = "test_presigned_download_expires"


def _run_kit(pytester, body, *args):
    pytester.makepyfile(presigning_local=REFERENCE)
    pytester.makepyfile(
        test_broken=KIT_MODULE.replace("{body}", textwrap.indent(textwrap.dedent(body), "    "))
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", *args)
    failed = {r.nodeid.split("::")[-1].split("[")[0] for r in result.reprec.getreports()
              if r.when == "call" and r.failed}
    return result, failed


def test_kit_passes_reference_repository(pytester):
    """The reference passes every kit test, none skipped: each mutant below differs from
    a conforming repository by its one defect."""
    result, failed = _run_kit(pytester, "pass")
    assert failed == set()
    outcomes = result.parseoutcomes()
    assert "skipped" not in outcomes and "failed" not in outcomes, outcomes


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_kit_fails_on_broken_repository(pytester, variant):
    body, must_fail = BROKEN[variant]
    args = () if EXPIRY_TEST in must_fail else ("-k", f"not {EXPIRY_TEST}")
    result, failed = _run_kit(pytester, body, *args)
    for name in must_fail:
        assert name in failed, f"{variant}: {name} passed against a broken repository"
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 10, "the rest of the kit should still pass"
