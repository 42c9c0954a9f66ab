"""What every topic class of the tracking kit shares: requirements, the skip fixture and
small builders that go through the public store API only, and the search parsers under
the short names the topic classes use."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pytest

# MAX_DOUBLE: what a store may return for +inf (inf itself, or MLflow's clamped value).
from tracklog.entities import MAX_DOUBLE, Metric, PagedList, Param, Run, RunTag
from tracklog.errors import ErrorCode, TracklogError
from tracklog.search import parse_experiment_filter as experiment_filter
from tracklog.search import parse_experiment_order_by as experiment_order
from tracklog.search import parse_logged_model_filter as logged_model_filter
from tracklog.search import parse_logged_model_order_by as logged_model_order
from tracklog.search import parse_model_version_filter as model_version_filter
from tracklog.search import parse_model_version_order_by as model_version_order
from tracklog.search import parse_registered_model_filter as registered_model_filter
from tracklog.search import parse_registered_model_order_by as registered_model_order
from tracklog.search import parse_run_filter as run_filter
from tracklog.search import parse_run_order_by as run_order
from tracklog.stores import (
    EncodedRunSearch,
    ModelRegistryStore,
    QueuedWrites,
    TraceStore,
    TrackingStore,
)

__all__ = [
    "CAPABILITIES", "MAX_DOUBLE", "KitBase", "StoreRequirements", "collect_pages",
    "error_code", "experiment_filter", "experiment_order", "logged_model_filter",
    "logged_model_order", "metric", "model_version_filter", "model_version_order",
    "new_experiment", "new_run", "params", "points", "registered_model_filter",
    "registered_model_order", "requires", "run_filter", "run_order", "same_float", "tags",
    "unique",
]

F = TypeVar("F", bound=Callable[..., Any])



@dataclass(frozen=True)
class StoreRequirements:
    """The optional behaviours a store declares, one documented flag each.

    A kit test that needs a behaviour is decorated with :func:`requires`; when the store
    does not declare it the test is skipped with the reason
    ``store does not declare <capability>``. Declare what the store really does::

        class TestMyStore(TrackingStoreConformance):
            requirements = StoreRequirements(integer_experiment_ids=True)
    """

    #: The store is also a :class:`tracklog.stores.ModelRegistryStore`. ``None`` (the
    #: default) detects it with ``isinstance`` on the store under test.
    model_registry: bool | None = None

    #: The store is also a :class:`tracklog.stores.TraceStore`. ``None`` (the default)
    #: detects it with ``isinstance`` on the store under test.
    traces: bool | None = None

    #: The store is also a :class:`tracklog.stores.QueuedWrites`. ``None`` (the default)
    #: detects it with ``isinstance`` on the store under test.
    queued_writes: bool | None = None

    #: The store is also a :class:`tracklog.stores.EncodedRunSearch`. ``None`` (the
    #: default) detects it with ``isinstance`` on the store under test.
    encoded_search: bool | None = None

    #: Experiment ids are integers handed out in increasing order (``"1"``, ``"2"``, …)
    #: and a non-integer id such as ``"abc"`` is INVALID_PARAMETER_VALUE (MLflow's SQL
    #: store behaves so; its legacy file store used random digit strings).
    integer_experiment_ids: bool = False

    #: Several threads may write through the same store object at once. The contract asks
    #: every store to be thread-safe; only a store that documents a single-writer
    #: limitation turns this off.
    concurrent_writers: bool = True

    def resolved(self, store: object) -> StoreRequirements:
        """These requirements with auto-detected flags filled in from ``store``."""
        found = {}
        if self.model_registry is None:
            found["model_registry"] = isinstance(store, ModelRegistryStore)
        if self.traces is None:
            found["traces"] = isinstance(store, TraceStore)
        if self.queued_writes is None:
            found["queued_writes"] = isinstance(store, QueuedWrites)
        if self.encoded_search is None:
            found["encoded_search"] = isinstance(store, EncodedRunSearch)
        return dataclasses.replace(self, **found) if found else self


CAPABILITIES = frozenset(f.name for f in dataclasses.fields(StoreRequirements))


def requires(*capabilities: str) -> Callable[[F], F]:
    """Declare the :class:`StoreRequirements` flags a test (or every test of a class) needs."""
    unknown = set(capabilities) - CAPABILITIES
    if unknown:
        raise TypeError(
            f"unknown store capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}"
        )

    def mark(fn: Any) -> None:
        fn.__tracklog_requires__ = tuple(getattr(fn, "__tracklog_requires__", ())) + capabilities

    def decorate(obj: F) -> F:
        if isinstance(obj, type):
            for name, member in vars(obj).items():
                if name.startswith("test_") and callable(member):
                    mark(member)
        else:
            mark(obj)
        return obj

    return decorate


class KitBase:
    """Base of every topic class: the requirements switch and shared builders."""

    #: Override in the implementer's subclass to declare optional behaviours.
    requirements: ClassVar[StoreRequirements] = StoreRequirements()

    @pytest.fixture(autouse=True)
    def _tracklog_requirements(self, request: pytest.FixtureRequest) -> None:
        needed = getattr(request.function, "__tracklog_requires__", ())
        if not needed:
            return
        reqs = self.requirements
        if any(getattr(reqs, cap) is None for cap in needed):
            reqs = reqs.resolved(request.getfixturevalue("store"))
        for cap in needed:
            if not getattr(reqs, cap):
                pytest.skip(f"store does not declare {cap}")

    @pytest.fixture
    def reopen(self) -> Callable[[], TrackingStore]:
        """A callable opening another store on the storage of ``store`` (the kit closes
        what it opens). Override it in the implementer's subclass."""
        pytest.fail("the kit needs a `reopen` fixture: a callable that opens a second store "
                    "on the same storage as `store` (see TrackingStoreConformance)")


# --- builders -----------------------------------------------------------------------

_counter = itertools.count()


def unique(prefix: str) -> str:
    """A name no other call in this process returns."""
    return f"{prefix}-{next(_counter)}"


def new_experiment(store: TrackingStore, prefix: str = "exp", **kwargs: Any) -> str:
    return store.create_experiment(unique(prefix), **kwargs)


def new_run(
    store: TrackingStore,
    experiment_id: str | None = None,
    *,
    run_name: str | None = None,
    user_id: str = "kit-user",
    start_time: int | None = 1_700_000_000_000,
    tags: Sequence[RunTag] = (),
) -> Run:
    if experiment_id is None:
        experiment_id = new_experiment(store)
    return store.create_run(experiment_id, user_id, start_time, tags=tags, run_name=run_name)


def metric(key: str, value: float, timestamp: int = 1000, step: int = 0, **kw: Any) -> Metric:
    return Metric(key=key, value=value, timestamp=timestamp, step=step, **kw)


def params(**kv: str) -> list[Param]:
    return [Param(k, v) for k, v in kv.items()]


def tags(**kv: str) -> list[RunTag]:
    return [RunTag(k, v) for k, v in kv.items()]


def points(history: Iterable[Metric]) -> list[tuple[int, int, float]]:
    """``(timestamp, step, value)`` of each point, the shape history assertions use."""
    return [(m.timestamp, m.step, m.value) for m in history]


def same_float(got: float, expected: float) -> bool:
    """Equality that treats NaN as NaN and accepts MLflow's clamped infinities."""
    if math.isnan(expected):
        return math.isnan(got)
    if math.isinf(expected):
        return got == expected or got == math.copysign(MAX_DOUBLE, expected)
    return got == expected


def error_code(fn: Callable[[], Any]) -> ErrorCode | None:
    """The error code ``fn`` fails with, or None when it succeeds."""
    try:
        fn()
    except TracklogError as exc:
        return exc.error_code
    return None


def collect_pages(
    fetch: Callable[[str | None], PagedList[Any]], limit: int = 10_000
) -> list[list[Any]]:
    """Follow ``token`` until a page comes without one; returns the pages."""
    pages: list[list[Any]] = []
    token = None
    for _ in range(limit):
        page = fetch(token)
        pages.append(list(page))
        token = page.token
        if token is None:
            return pages
    raise AssertionError(f"paging did not end after {limit} pages")
