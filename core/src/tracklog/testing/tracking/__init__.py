"""The conformance kit for tracking stores: ``TrackingStoreConformance``.

See :class:`TrackingStoreConformance` for the plugin-author guide.
"""

from __future__ import annotations

from ._base import StoreRequirements, requires
from .bounds import BoundsTests
from .concurrency import ConcurrencyTests
from .encoded import EncodedSearchTests
from .experiments import ExperimentTests
from .inputs import InputTests
from .lifecycle import LifecycleTests
from .log_batch import LogBatchTests
from .logged_models import LoggedModelTests
from .maintenance import ImportTests, PurgeTests
from .metrics import MetricTests
from .pagination import PaginationTests
from .params import ParamTests
from .queued import QueuedWriteTests, ReadNowTests
from .registry import RegistryTests
from .runs import RunTests
from .search_runs import FILTER_TRUTH_TABLE, ORDER_TRUTH_TABLE, SearchRunsTests
from .state import StateTests
from .tags import TagTests
from .traces import TRACE_FILTER_TRUTH_TABLE, TraceTests


# The bases are spelled out (not unpacked from a tuple) so type checkers see them.
class TrackingStoreConformance(
    ExperimentTests,
    RunTests,
    LogBatchTests,
    ParamTests,
    MetricTests,
    TagTests,
    SearchRunsTests,
    PaginationTests,
    LifecycleTests,
    InputTests,
    LoggedModelTests,
    RegistryTests,
    TraceTests,
    ConcurrencyTests,
    QueuedWriteTests,
    ReadNowTests,
    EncodedSearchTests,
    BoundsTests,
    ImportTests,
    PurgeTests,
    StateTests,
):
    """Every behaviour of the :class:`tracklog.stores.TrackingStore` contract, as tests.

    **Using the kit.** In your plugin's test suite, subclass this class in a module whose
    name pytest collects, with a class name starting with ``Test``, and give it two
    fixtures: ``reopen``, a callable that opens a store on storage of the test's own, and
    ``store``, that yields a fresh, empty store (holding only the ``Default`` experiment
    ``"0"``) opened so and cleans up afterwards::

        # tests/test_conformance.py
        import pytest

        from tracklog.plugins import resolve_store
        from tracklog.testing.tracking import StoreRequirements, TrackingStoreConformance


        class TestSqliteConformance(TrackingStoreConformance):
            requirements = StoreRequirements(integer_experiment_ids=True)

            @pytest.fixture
            def reopen(self, tmp_path):
                uri = f"sqlite:///{tmp_path}/kit.db"
                return lambda: resolve_store(uri, str(tmp_path / "artifacts"))

            @pytest.fixture
            def store(self, reopen):
                store = reopen()
                yield store
                store.close()

    Use your own scheme's URI (the one your plugin registers through
    ``register_tracking_stores``), or build your store class directly. ``reopen`` is
    called again while ``store`` is open, to check that a second store on the same
    storage (another server process) sees everything; the kit closes what it opens.
    Then run ``pytest tests/test_conformance.py``. The fixture is function-scoped: every
    test builds its own scenario through the public store API and asserts the values it
    reads back through the same API, so tests never depend on each other. For a real
    database, create a uniquely named database or schema in the fixture and drop it
    after the test; if the service cannot be reached, call
    ``tracklog.testing.service_unavailable(service, reason)`` (a skip that names the
    service, and a failure in CI).
    ``LifecycleTests.test_close_is_idempotent`` calls ``store.close()`` twice, so the
    fixture's teardown must accept a closed store.

    **Requirements.** Optional behaviours are flags of :class:`StoreRequirements`
    (``model_registry``, auto-detected from ``isinstance(store, ModelRegistryStore)``;
    ``traces``, auto-detected from ``isinstance(store, TraceStore)``; ``queued_writes``,
    auto-detected from ``isinstance(store, QueuedWrites)``;
    ``integer_experiment_ids``; ``concurrent_writers``). A test that needs one is
    decorated with :func:`requires` and is skipped with the reason
    ``store does not declare <capability>`` when your ``requirements`` lack it.

    **Bypassing one test.** Override the method in your subclass, with a reason::

        def test_concurrent_writes(self, store):
            pytest.skip("MyStore serialises writers in another process")

    **What each topic covers** (one class each, in ``tracklog.testing.tracking``):

    ``ExperimentTests``
        the Default experiment "0"; create/get/get-by-name; unique names across deleted
        experiments; default artifact location ``<root>/<id>``; rename; delete/restore
        and their error codes ("0" cannot be deleted: INVALID_PARAMETER_VALUE); experiment
        tags; ``search_experiments`` view types, filter truth table, order_by and paging.
    ``RunTests``
        32-hex run ids; generated ``adjective-animal-NNN`` names kept in sync with the
        ``mlflow.runName`` tag both ways (mismatch is INVALID_PARAMETER_VALUE);
        ``update_run_info`` partial updates; delete/restore; every write to a deleted
        run is INVALID_PARAMETER_VALUE; unknown runs are RESOURCE_DOES_NOT_EXIST.
    ``LogBatchTests``
        atomic batches (a param conflict writes nothing), empty batches, the protocol's
        batch limits (1000 metrics, 100 params, 100 tags).
    ``ParamTests``
        params are immutable: same value is a no-op, another value is
        INVALID_PARAMETER_VALUE; 6000-character values.
    ``MetricTests``
        history order (timestamp, step, value); exact duplicates stored once, NaN ones
        too; the latest value is the max ``(step, timestamp, value)``; NaN and ±inf round trip
        (inf may come back clamped to ±1.7976931348623157e308); history paging; unknown
        key or run gives an empty history.
    ``TagTests``
        set/overwrite/delete; deleting a missing tag is RESOURCE_DOES_NOT_EXIST.
    ``SearchRunsTests``
        the truth tables :data:`FILTER_TRUTH_TABLE` and :data:`ORDER_TRUTH_TABLE` over
        the scenario drawn in :mod:`tracklog.testing.tracking.search_runs`: every
        operator and identifier type, missing keys, LIKE vs ILIKE, IN / NOT IN on
        run_id, datasets, NaN (it fails every comparison but ``!=``); in both
        directions numbers, then NaN, then missing keys; default order
        ``start_time DESC, run_id ASC``.
    ``PaginationTests``
        250 runs in pages of 7, each exactly once and in order; tokens only when more
        rows exist; garbage tokens are INVALID_PARAMETER_VALUE.
    ``LifecycleTests``
        run view types; experiment deletion cascading to runs, and restoring bringing
        back all of them (also runs deleted before the experiment); ``close``.
    ``InputTests``
        dataset inputs de-duplicated by name and digest, input tags, model inputs,
        ``log_outputs``.
    ``LoggedModelTests``
        ``m-<32hex>`` ids, PENDING → READY/UPLOAD_FAILED, artifact location
        ``<experiment location>/models/<id>/artifacts``, tags, params, soft delete
        (``allow_deleted``), search filter/order/paging, metrics linked through
        ``model_id``.
    ``RegistryTests`` (``model_registry``)
        registered models CRUD, versions ``max + 1`` from "1", READY in stage "None",
        stage transitions with ``archive_existing_versions``, latest versions, aliases,
        tags, an unknown alias INVALID_PARAMETER_VALUE, registry searches and paging
        (prompts, tagged ``mlflow.prompt.is_prompt`` = ``'true'``, hidden unless the
        filter asks for them), download URIs; with
        ``concurrent_writers``, sixteen threads registering versions of one model at once
        all succeed with the numbers 1..16, and concurrent promotions that archive the
        existing versions leave one version in the stage.
    ``TraceTests`` (``traces``)
        trace infos round trip with the ``mlflow.artifactLocation`` tag
        ``<experiment location>/traces/<id>/artifacts``; a trace sent again is updated;
        tags; batch gets in the order asked; the search truth table
        :data:`TRACE_FILTER_TRUTH_TABLE` (state, times, name, tags, metadata, ids), its
        order (``timestamp_ms DESC, trace_id ASC`` by default, missing keys last) and
        paging; deletion by ids and by age (oldest first, ``max_traces``); traces found
        by run (``mlflow.sourceRun`` or a link); feedback and expectations created,
        read, updated (kind kept, metadata merged) and deleted; deleted experiments
        refuse writes and drop out of searches.
    ``ConcurrencyTests`` (``concurrent_writers``)
        threads writing through one store lose nothing: four creating runs and logging,
        eight logging batches to runs of their own and to one shared run.
    ``QueuedWriteTests`` (``queued_writes``: a :class:`tracklog.stores.QueuedWrites`)
        a queued batch, run creation and update land as the synchronous call would and
        ``done`` is told once, with the result or the synchronous call's error code;
        hundreds queued from one thread without waiting all land, in order, refused
        ones among them costing the others nothing; a store that declines (False)
        never tells ``done``.
    ``ReadNowTests``
        for a store whose ``reads_now`` is True: point reads inside ``answering_now``
        answer as outside, errors included, or raise WouldWait.
    ``EncodedSearchTests`` (``encoded_search``: a :class:`tracklog.stores.EncodedRunSearch`)
        each run of an encoded search page decodes to what the server's codec makes of
        ``search_runs``' run (escaped text, unset end times, NaN and infinite metrics,
        inputs and outputs), with the same order, page tokens and errors.
    ``BoundsTests``
        what a store refuses before writing anything, with INVALID_PARAMETER_VALUE
        naming the field: start/end times, metric timestamps and steps outside int64
        (the extremes of int64 round-trip), page tokens with offsets past int64 or
        below zero, text holding NUL (U+0000); an id or a name with NUL finds nothing.
    ``ImportTests`` (a store that is a :class:`tracklog.importing.ImportStore`)
        experiments and runs imported with their ids, times, statuses and lifecycle
        stages; importing again is a no-op or reopens the run; clashing ids and names
        are INVALID_PARAMETER_VALUE; new experiments never collide with imported ids.
    ``PurgeTests`` (a store that is a :class:`tracklog.gc.PurgeStore`)
        deleted runs, experiments and logged models found (with the deletion cutoff) and
        removed for good with everything in them, neighbours untouched; live records
        refused with INVALID_PARAMETER_VALUE; purging twice is a no-op.
    ``StateTests``
        a store opened again with ``reopen`` reads back everything the first wrote
        (experiments, runs, history, inputs, logged models, the registry), and each of two
        open stores sees the other's writes; entities a store returns are snapshots:
        changing their tags, params, metrics or lists changes nothing stored.

    Filters and order-bys are written as strings and parsed with :mod:`tracklog.search`,
    exactly as the server does, so a store only ever sees the AST of
    :mod:`tracklog.search.ast`.
    """


#: The topic classes the kit is made of, in order.
TOPIC_CLASSES = TrackingStoreConformance.__bases__

__all__ = [
    "FILTER_TRUTH_TABLE",
    "ORDER_TRUTH_TABLE",
    "TRACE_FILTER_TRUTH_TABLE",
    "TOPIC_CLASSES",
    "StoreRequirements",
    "TrackingStoreConformance",
    "requires",
]
