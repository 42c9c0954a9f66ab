"""``search_runs`` over the file store: each run's files are read only as far as its
filter and ordering look."""

from __future__ import annotations

import os
from collections.abc import Sequence

from tracklog.entities import PagedList, Run, ViewType
from tracklog.search.ast import Filter, Kind, OrderBy
from tracklog.search.evaluate import compile_run_filter, sort_runs
from tracklog.search.tokens import paginate
from tracklog_store_file.paths import EXP_ID, META, PARAMS, TAGS, read_or_skip
from tracklog_store_file.rows import Rows


class RunSearch(Rows):
    """The run search of the tracking contract."""

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter: Filter = (),
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[OrderBy] = (),
        page_token: str | None = None,
    ) -> PagedList[Run]:
        # One predicate per comparison, attributes first (they need only meta.yaml), so
        # a run is dropped before the files of later comparisons are read.
        steps = sorted(
            ((c.ident.kind, c.ident.key, compile_run_filter((c,))) for c in filter),
            key=lambda step: step[0] != Kind.ATTRIBUTE,
        )
        order_keys = [(o.ident.kind, o.ident.key) for o in order_by]
        stages = run_view_type.stages()
        matched: list[Run] = []
        folders: dict[str, str] = {}
        for exp_id in dict.fromkeys(str(e) for e in experiment_ids):
            if not EXP_ID.match(exp_id):
                continue
            exp_folder = self._experiment_dir(exp_id)
            if exp_folder is None:
                continue
            for folder in self._run_dirs(exp_folder):
                info = read_or_skip(
                    "run", (folder, META), self._read_run_info, folder, exp_id
                )
                if info is None:
                    continue
                if info.lifecycle_stage not in stages:
                    continue
                run = Run(info=info)
                loaded: set[tuple[Kind, str]] = set()
                if all(
                    self._load_for_search(run, folder, kind, key, loaded) and predicate(run)
                    for kind, key, predicate in steps
                ):
                    for kind, key in order_keys:
                        self._load_for_search(run, folder, kind, key, loaded)
                    matched.append(run)
                    folders[info.run_id] = folder
        page = paginate(sort_runs(matched, order_by), max_results, page_token)
        return PagedList([self._full_run(r.info, folders[r.info.run_id]) for r in page], page.token)

    def _load_for_search(
        self, run: Run, folder: str, kind: Kind, key: str, loaded: set[tuple[Kind, str]]
    ) -> bool:
        """Read into ``run`` the one value a comparison or ordering looks at."""
        if (kind, key) in loaded or kind == Kind.ATTRIBUTE:
            return True
        loaded.add((kind, key))
        if kind == Kind.METRIC:
            run.data.metrics.update(self._latest_metrics(folder, (key,)))
        elif kind == Kind.PARAM:
            run.data.params.update(self._key_values(folder, PARAMS, (key,)))
        elif kind == Kind.TAG:
            run.data.tags.update(self._key_values(folder, TAGS, (key,)))
        elif kind == Kind.DATASET and not any(k == Kind.DATASET for k, _ in loaded - {(kind, key)}):
            run.inputs = self._read_inputs(folder, os.path.dirname(folder))
        return True
