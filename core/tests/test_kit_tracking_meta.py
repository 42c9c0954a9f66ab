"""Checks of the tracking conformance kit itself: coverage of the contract, documentation,
composition and the requirements mechanism."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import textwrap

import pytest

import tracklog.testing.tracking as kit
from tracklog import plugins
from tracklog.errors import TracklogError
from tracklog.search import parse_run_filter
from tracklog.search.ast import Kind, Op
from tracklog.stores import ModelRegistryStore, TraceStore, TrackingStore
from tracklog.testing.tracking import (
    FILTER_TRUTH_TABLE,
    TOPIC_CLASSES,
    StoreRequirements,
    TrackingStoreConformance,
    requires,
)

pytest_plugins = ["pytester"]

KIT_MODULES = [
    importlib.import_module(f"{kit.__name__}.{info.name}")
    for info in pkgutil.iter_modules(kit.__path__)
]
KIT_SOURCE = "\n".join(inspect.getsource(m) for m in KIT_MODULES)


def contract_methods(cls: type) -> list[str]:
    return sorted(
        name for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    )


def kit_tests() -> list[tuple[type, str]]:
    return [(cls, name) for cls in TOPIC_CLASSES for name in vars(cls) if name.startswith("test_")]


@pytest.mark.parametrize(
    "method", contract_methods(TrackingStore) + contract_methods(ModelRegistryStore)
)
def test_every_contract_method_is_exercised(method: str) -> None:
    """Each public method of TrackingStore / ModelRegistryStore is called somewhere in the kit."""
    assert re.search(rf"\.{method}\(", KIT_SOURCE), f"no kit test calls {method}()"


def test_every_kit_test_has_a_docstring() -> None:
    """A kit test says in one line what it proves; the report shows it to plugin authors."""
    missing = [f"{cls.__name__}.{name}" for cls, name in kit_tests()
               if not (getattr(cls, name).__doc__ or "").strip()]
    assert not missing


def test_topic_classes_are_all_mixed_in() -> None:
    """Every *Tests class of the kit's modules is a base of TrackingStoreConformance."""
    defined = {
        obj for module in KIT_MODULES for obj in vars(module).values()
        if isinstance(obj, type) and obj.__name__.endswith("Tests")
        and obj.__module__ == module.__name__
    }
    assert defined == set(TOPIC_CLASSES)
    assert set(TrackingStoreConformance.__bases__) == defined
    for cls in defined:
        assert not cls.__name__.startswith("Test"), "pytest would collect it on its own"
        assert cls.__name__ in (TrackingStoreConformance.__doc__ or "")


def test_test_names_do_not_shadow_each_other() -> None:
    """Two topic classes defining one test name would silently drop one of them."""
    names = [name for _, name in kit_tests()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    conformance = [n for n in dir(TrackingStoreConformance) if n.startswith("test_")]
    assert sorted(conformance) == sorted(names)


def test_every_capability_is_documented_and_used() -> None:
    """Each StoreRequirements flag has a doc comment and at least one test that needs it."""
    source = inspect.getsource(StoreRequirements)
    needed = {cap for cls, name in kit_tests()
              for cap in getattr(getattr(cls, name), "__tracklog_requires__", ())}
    for field in dataclasses.fields(StoreRequirements):
        assert re.search(rf"#:.*\n(\s*#:.*\n)*\s*{field.name}:", source), field.name
        assert field.name in needed, f"no kit test requires {field.name}"


def test_requires_rejects_unknown_capability() -> None:
    """A misspelt capability fails at import time, not by silently never skipping."""
    with pytest.raises(TypeError, match="model_regsitry"):
        requires("model_regsitry")


def test_model_registry_is_detected() -> None:
    """model_registry=None resolves from isinstance(store, ModelRegistryStore)."""

    class Plain:
        pass

    class Registry:
        pass

    ModelRegistryStore.register(Registry)
    assert StoreRequirements().resolved(Plain()).model_registry is False
    assert StoreRequirements().resolved(Registry()).model_registry is True
    assert StoreRequirements(model_registry=False).resolved(Registry()).model_registry is False


def test_traces_are_detected() -> None:
    """traces=None resolves from isinstance(store, TraceStore)."""

    class Plain:
        pass

    class Traces:
        pass

    TraceStore.register(Traces)
    assert StoreRequirements().resolved(Plain()).traces is False
    assert StoreRequirements().resolved(Traces()).traces is True
    assert StoreRequirements(traces=False).resolved(Traces()).traces is False


def test_trace_filter_table_covers_the_grammar() -> None:
    """The trace truth table uses every trace operator, identifier kind and attribute."""
    from tracklog.search import parse_trace_filter
    from tracklog.testing.tracking import TRACE_FILTER_TRUTH_TABLE

    values = {k: "tr-x" for k in "abcde"} | {"t100": 1, "t200": 2}
    comparisons = [c for text, _ in TRACE_FILTER_TRUTH_TABLE
                   for c in parse_trace_filter(text.format(**values))]
    assert {c.op for c in comparisons} == set(Op)
    assert {c.ident.kind for c in comparisons} == {Kind.ATTRIBUTE, Kind.TAG, Kind.METADATA}
    attributes = {c.ident.key for c in comparisons if c.ident.kind is Kind.ATTRIBUTE}
    assert attributes == {"trace_id", "status", "timestamp_ms", "execution_time_ms",
                          "end_time_ms"}


def test_run_filter_table_covers_the_grammar() -> None:
    """The truth table uses every run operator, identifier kind and run attribute."""
    ids = {name: "0" * 32 for name in ("alpha", "beta", "gamma", "omega", "stranger")}
    comparisons = [c for rows in FILTER_TRUTH_TABLE.values() for text, _ in rows
                   for c in parse_run_filter(text.format(**ids))]
    assert {c.op for c in comparisons} == set(Op)
    # Metadata belongs to the trace grammar, not to runs'.
    assert {c.ident.kind for c in comparisons} == set(Kind) - {Kind.METADATA}
    attributes = {c.ident.key for c in comparisons if c.ident.kind is Kind.ATTRIBUTE}
    assert attributes == {"run_id", "run_name", "status", "user_id", "artifact_uri",
                          "start_time", "end_time"}
    datasets = {c.ident.key for c in comparisons if c.ident.kind is Kind.DATASET}
    assert datasets == {"name", "digest", "context"}
    expected_sizes = {len(expected) for rows in FILTER_TRUTH_TABLE.values()
                      for _, expected in rows}
    assert 0 in expected_sizes and 8 in expected_sizes


def test_skips_name_the_missing_capability(pytester: pytest.Pytester) -> None:
    """A store lacking a capability sees its tests skipped with the capability named,
    before any store is created."""
    pytester.makepyfile(
        test_fake="""
        import pytest
        from tracklog.testing.tracking import StoreRequirements, TrackingStoreConformance

        class TestFake(TrackingStoreConformance):
            requirements = StoreRequirements(model_registry=False, concurrent_writers=False,
                                             traces=False, queued_writes=False,
                                             encoded_search=False)

            @pytest.fixture
            def store(self):
                pytest.fail("a skipped test must not build a store")
        """
    )
    needing = sorted(name for cls, name in kit_tests()
                     if getattr(getattr(cls, name), "__tracklog_requires__", ()))
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "-k", " or ".join(needing))
    outcomes = result.parseoutcomes()
    assert outcomes == {"skipped": len(needing), "deselected": len(kit_tests()) - len(needing)}
    assert len(needing) > len([n for n in vars(kit.RegistryTests) if n.startswith("test_")])
    result.stdout.fnmatch_lines_random([
        "*store does not declare model_registry*",
        "*store does not declare integer_experiment_ids*",
        "*store does not declare concurrent_writers*",
        "*store does not declare traces*",
        "*store does not declare queued_writes*",
        "*store does not declare encoded_search*",
    ])


def guide_example() -> str:
    """The code block of TrackingStoreConformance's docstring that starts with a file name."""
    doc = TrackingStoreConformance.__doc__ or ""
    lines = doc[doc.index("        # tests/test_conformance.py"):].splitlines()
    block = []
    for line in lines:
        if line.strip() and not line.startswith("        "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


def test_guide_example_runs(pytester: pytest.Pytester) -> None:
    """The plugin-author example in the class docstring runs the whole kit and passes
    (against the sqlite:// store of whichever installed plugin provides it)."""
    try:
        plugins.tracking_store_factory("sqlite:///probe.db")
    except TracklogError as exc:
        pytest.skip(f"no installed plugin provides sqlite:// stores: {exc.message}")
    pytester.makepyfile(test_guide_example=guide_example())
    # A subprocess: the store's libraries must not be imported inside pytester's
    # sys.modules snapshot, which would unload them under the rest of the session.
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    assert result.parseoutcomes() == {"passed": len(kit_tests())}
