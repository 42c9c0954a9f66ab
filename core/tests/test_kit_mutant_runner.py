"""The mutant runner itself: a mutant that breaks nothing is reported, a skip is no catch."""

from __future__ import annotations

import pytest

from tracklog.errors import TracklogError
from tracklog.plugins import resolve_store
from tracklog.testing.mutants import Mutants


def _sqlite_store(where):
    try:
        return resolve_store(f"sqlite:///{where}/kit.db", str(where / "artifacts"))
    except TracklogError as exc:
        pytest.skip(f"no installed plugin provides sqlite:// stores: {exc.message}")


def test_a_mutant_that_breaks_nothing_is_reported(tmp_path) -> None:
    mutants = Mutants()

    @mutants("breaks nothing", "test_set_and_overwrite_tag")
    def _same(base: type) -> type:
        return base

    with pytest.raises(pytest.fail.Exception, match="passed against a store whose breaks"):
        mutants.check("breaks nothing", _sqlite_store, tmp_path)


def test_a_mutant_that_only_makes_the_test_skip_is_no_catch(tmp_path) -> None:
    mutants = Mutants()

    @mutants("skips", "test_set_and_overwrite_tag")
    def _skips(base: type) -> type:
        class M(base):
            def set_tag(self, run_id, tag):
                pytest.skip("not a failure")

        return M

    with pytest.raises(pytest.fail.Exception, match="skipped on a store whose skips"):
        mutants.check("skips", _sqlite_store, tmp_path)


def test_two_mutants_cannot_share_a_name() -> None:
    mutants = Mutants()
    mutants("same", "test_a")(lambda base: base)
    with pytest.raises(ValueError, match="same"):
        mutants("same", "test_b")(lambda base: base)
