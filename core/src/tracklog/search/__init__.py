"""Search grammar: parse MLflow filter / order-by strings once, evaluate them anywhere.

How a store author uses this package:

1. The caller (the server route, or the SDK) parses the request strings with the
   ``parse_*`` function of the search kind: ``parse_run_filter(filter_string)``,
   ``parse_run_order_by(order_by)``, and likewise for experiments, logged models
   (whose order_by is a list of ``{field_name, ascending, dataset_name?,
   dataset_digest?}`` objects), registered models and model versions. Bad input raises
   ``tracklog.errors.invalid`` (HTTP 400, ``INVALID_PARAMETER_VALUE``) with MLflow's
   wording, naming the culprit, before any store is called. The parser also bounds
   complexity (:data:`MAX_FILTER_CLAUSES`, :data:`MAX_FILTER_LENGTH`,
   :data:`MAX_ORDER_BY_KEYS`), so a store never receives more than it can serve at once.
2. The store receives the AST of :mod:`tracklog.search.ast`: a ``Filter`` (tuple of
   :class:`Comparison`, all of which must hold) and a tuple of :class:`OrderBy`.
   Identifiers are canonical (aliases such as ``created`` or ```Run Name``` resolved) and
   values are typed (numbers for metrics and numeric attributes, ``str`` otherwise, a
   tuple for ``IN``), so a SQL store only maps them to WHERE / ORDER BY clauses.
3. A store that cannot push a search down compiles the filter once and evaluates it in
   Python: :func:`compile_run_filter` (or :func:`run_matches`), then :func:`sort_runs`,
   then :func:`paginate`; the experiment, logged-model, registered-model and model-version
   counterparts work the same way. :func:`like_to_regex` gives LIKE semantics (``%``,
   ``_``, everything else literal) outside SQL.

The semantics a pushed-down implementation must reproduce are listed in
:mod:`tracklog.search.ast` and :mod:`tracklog.search.evaluate` (missing keys never match,
case-sensitive LIKE, NaN matches nothing, missing values sort last, default tie-breaks,
and the registry's ``mlflow.prompt.is_prompt`` tag read as ``'false'`` when absent).

Example (the tests run it)::

    flt = parse_run_filter("metrics.acc > 0.6 AND params.lr = '0.1'")
    order = parse_run_order_by(["metrics.acc DESC"])
    matches = compile_run_filter(flt)
    page = paginate(sort_runs([r for r in runs if matches(r)], order), 100, page_token)
"""

from tracklog.search.ast import Comparison, Filter, Identifier, Kind, Op, OrderBy, Value
from tracklog.search.evaluate import (
    compile_experiment_filter,
    compile_logged_model_filter,
    compile_model_version_filter,
    compile_registered_model_filter,
    compile_run_filter,
    compile_trace_filter,
    experiment_matches,
    like_to_regex,
    logged_model_matches,
    model_version_matches,
    registered_model_matches,
    run_matches,
    sort_experiments,
    sort_logged_models,
    sort_model_versions,
    sort_registered_models,
    sort_runs,
    sort_traces,
)
from tracklog.search.parser import (
    MAX_FILTER_CLAUSES,
    MAX_FILTER_LENGTH,
    MAX_ORDER_BY_KEYS,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_logged_model_filter,
    parse_logged_model_order_by,
    parse_model_version_filter,
    parse_model_version_order_by,
    parse_registered_model_filter,
    parse_registered_model_order_by,
    parse_run_filter,
    parse_run_order_by,
    parse_trace_filter,
    parse_trace_order_by,
)
from tracklog.search.tokens import decode_page_token, encode_page_token, paginate

__all__ = [
    "MAX_FILTER_CLAUSES",
    "MAX_FILTER_LENGTH",
    "MAX_ORDER_BY_KEYS",
    "Comparison",
    "Filter",
    "Identifier",
    "Kind",
    "Op",
    "OrderBy",
    "Value",
    "compile_experiment_filter",
    "compile_logged_model_filter",
    "compile_model_version_filter",
    "compile_registered_model_filter",
    "compile_run_filter",
    "compile_trace_filter",
    "decode_page_token",
    "encode_page_token",
    "experiment_matches",
    "like_to_regex",
    "logged_model_matches",
    "model_version_matches",
    "paginate",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_logged_model_filter",
    "parse_logged_model_order_by",
    "parse_model_version_filter",
    "parse_model_version_order_by",
    "parse_registered_model_filter",
    "parse_registered_model_order_by",
    "parse_run_filter",
    "parse_run_order_by",
    "parse_trace_filter",
    "parse_trace_order_by",
    "registered_model_matches",
    "run_matches",
    "sort_experiments",
    "sort_logged_models",
    "sort_model_versions",
    "sort_registered_models",
    "sort_runs",
    "sort_traces",
]
