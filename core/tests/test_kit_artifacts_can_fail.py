"""The artifact kit must catch broken repositories: each broken variant below has one
defect, and the tests named for that defect must fail against it."""

import textwrap

import pytest

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
}


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_kit_fails_on_broken_repository(pytester, variant):
    body, must_fail = BROKEN[variant]
    pytester.makepyfile(
        test_broken=textwrap.dedent(
            """
            import io, os, shutil
            import pytest
            from tracklog.artifacts.local import LocalArtifactRepository
            from tracklog.entities import FileInfo
            from tracklog.testing.artifacts import ArtifactRepositoryConformance

            class Broken(LocalArtifactRepository):
            {body}

            class TestBroken(ArtifactRepositoryConformance):
                @pytest.fixture
                def repo(self, tmp_path):
                    yield Broken(str(tmp_path / "root"))
            """
        ).replace("{body}", textwrap.indent(textwrap.dedent(body), "    "))
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    failed = {r.nodeid.split("::")[-1].split("[")[0] for r in result.reprec.getreports()
              if r.when == "call" and r.failed}
    for name in must_fail:
        assert name in failed, f"{variant}: {name} passed against a broken repository"
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 10, "the rest of the kit should still pass"
