"""Prove that a kit test can fail: deliberate bugs ("mutants") aimed at one kit test each.

A mutant takes a store class and returns a subclass that breaks one rule. The kit test aimed
at that rule must pass on the real store and fail on the mutant; a kit test that passes on
both checks nothing. A plugin author who adds tests of their own can prove them the same way::

    from tracklog.testing.mutants import Mutants

    mutants = Mutants()

    @mutants("tags are dropped", "test_set_and_delete_tags")
    def _no_tags(base):
        class M(base):
            def set_tag(self, run_id, tag):
                pass
        return M

    @pytest.mark.parametrize("name", mutants.names())
    def test_kit_catches_mutant(name, tmp_path):
        mutants.check(name, lambda where: MyStore(where), tmp_path)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tracklog.testing.tracking import TrackingStoreConformance

Mutant = Callable[[type], type]


class Mutants:
    """A set of mutants, each named by the rule it breaks and aimed at one kit test."""

    def __init__(self) -> None:
        self._cases: dict[str, tuple[str, Mutant]] = {}

    def __call__(self, name: str, kit_test: str) -> Callable[[Mutant], Mutant]:
        """Register the decorated mutant: ``name`` says what it breaks."""

        def register(fn: Mutant) -> Mutant:
            if name in self._cases:
                raise ValueError(f"two mutants are named {name!r}")
            self._cases[name] = (kit_test, fn)
            return fn

        return register

    def names(self) -> list[str]:
        """The mutants' names, sorted (for ``pytest.mark.parametrize``)."""
        return sorted(self._cases)

    def check(self, name: str, open_store: Callable[[Path], Any], tmp_path: Path,
              kit: object | None = None) -> None:
        """Run the mutant's kit test on a real store, then on the mutant.

        :param open_store: opens a store kept under the given directory (a fresh one for
            the real store and for the mutant; called again with the same directory when
            the kit test asks for its ``reopen`` fixture).
        :param kit: the conformance class instance holding the test (the tracking kit by
            default).

        Fails unless the real store passes and the mutant fails with an assertion, a
        ``pytest.raises`` that did not raise, or an unexpected error (a skip is not a failure).
        """
        kit_test, make = self._cases[name]
        kit = kit if kit is not None else TrackingStoreConformance()
        test = getattr(kit, kit_test)
        wants_reopen = "reopen" in inspect.signature(test).parameters

        def opened(where: Path, broken: bool) -> Any:
            where.mkdir(parents=True, exist_ok=True)
            store = open_store(where)
            if broken:
                store.__class__ = make(type(store))
            return store

        def run(where: Path, broken: bool) -> None:
            store = opened(where, broken)
            extra = {"reopen": lambda: opened(where, broken)} if wants_reopen else {}
            try:
                test(store, **extra)
            finally:
                store.close()

        run(tmp_path / "real", broken=False)
        try:
            run(tmp_path / "mutant", broken=True)
        except pytest.skip.Exception as exc:
            pytest.fail(f"{kit_test} skipped on a store whose {name}: {exc}")
        except (Exception, pytest.fail.Exception):
            pass
        else:
            pytest.fail(f"{kit_test} passed against a store whose {name}")
