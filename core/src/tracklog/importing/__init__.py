"""Copying tracking data between stores with ids kept: the import capability a store
may offer, the sources a migration reads, and the migration itself.

A migration walks a :class:`MigrationSource` experiment by experiment and run by run and
writes each into an :class:`ImportStore`. Ids, names, times, statuses and lifecycle
stages are kept, so the client's links and ``runs:/`` URIs stay valid. It is resumable:
a run is created carrying the marker tag :data:`INCOMPLETE_TAG` (in the same write, so
no interruption can leave an unmarked partial run), its params, tags and full metric
histories follow in batches (each write is idempotent: the same param, tag or point
written twice is stored once), and the marker goes with the run's final stage. A run found complete
in the destination is skipped; one found with the marker is written again. At the end
each copied run is verified: counts and a checksum of its params and metric histories,
read back from both sides.

Besides runs (with their dataset inputs and logged-model inputs and outputs), a migration
copies logged models, traces (infos, tags, metadata, assessments) and the model registry
(registered models with their tags and aliases, versions with their tags), where both
the source and the destination have them. Each of those is written in one transaction
by the destination, so one found there is complete and skipped.

The capability is in :mod:`.store`, the sources in :mod:`.sources` and :mod:`.rest`,
the comparison of a copy with its source in :mod:`.verify`, the migration itself in
:mod:`.migration`; their public names are importable from here.
"""

from tracklog.importing.migration import Progress, Report, migrate
from tracklog.importing.rest import RestSource
from tracklog.importing.sources import MigrationSource, StoreSource
from tracklog.importing.store import (
    BATCH_POINTS,
    INCOMPLETE_TAG,
    HistoryColumns,
    ImportedRun,
    ImportedRunColumns,
    ImportStore,
    history_columns,
)
from tracklog.importing.verify import checksum, columns_checksum

__all__ = [
    "BATCH_POINTS",
    "INCOMPLETE_TAG",
    "HistoryColumns",
    "ImportStore",
    "ImportedRun",
    "ImportedRunColumns",
    "MigrationSource",
    "Progress",
    "Report",
    "RestSource",
    "StoreSource",
    "checksum",
    "columns_checksum",
    "history_columns",
    "migrate",
]
