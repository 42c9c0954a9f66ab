"""Parse MLflow search filters and order-by clauses into :mod:`tracklog.search.ast`.

The grammar is MLflow's ("Search" in docs/protocol.md): a conjunction of comparisons
joined by a case-insensitive ``AND``; identifiers ``entity.key`` with MLflow's entity
aliases (only the first dot splits; backticks or quotes around the entity or the key are
stripped); a bare key is an attribute. Each search kind (runs, experiments, logged models,
registered models, model versions) has its own :class:`_Grammar` listing the identifiers,
operators and value types it accepts. Every rejection is ``tracklog.errors.invalid`` naming
the culprit.

Quoted strings keep their inner text verbatim, as MLflow does: ``'it''s'`` is the five
characters ``it''s`` and ``'a\\'b'`` is ``a\\'b``; to match a value holding a quote, quote
it with the other kind (``"it's"``).

Complexity is bounded here, once for every store: a filter holds at most
:data:`MAX_FILTER_CLAUSES` comparisons in at most :data:`MAX_FILTER_LENGTH` characters, and
an order-by at most :data:`MAX_ORDER_BY_KEYS` keys. MLflow's UI sends a few comparisons and
one ordering; the limits are far above that and low enough that every backend answers at
once (a SQL store compiles each comparison into its statement, and SQLite refuses
expression trees deeper than 1,000).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracklog.errors import invalid
from tracklog.search.ast import Comparison, Filter, Identifier, Kind, Op, OrderBy, Value

__all__ = [
    "MAX_FILTER_CLAUSES",
    "MAX_FILTER_LENGTH",
    "MAX_ORDER_BY_KEYS",
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
]

#: Most comparisons one filter may AND together.
MAX_FILTER_CLAUSES = 100
#: Longest filter string, in characters (an ``IN`` list of 1,000 run ids takes ~36,000).
MAX_FILTER_LENGTH = 100_000
#: Most ordering keys one search may give.
MAX_ORDER_BY_KEYS = 20

# --- lexical pieces -------------------------------------------------------------------

_BACKTICKED = r"`(?:``|[^`])*`"
# As MLflow's SQL tokenizer: a doubled or backslashed quote continues the string, and a
# backslash right before the closing quote is an ordinary character ('C:\' is C:\).
_DQUOTED = r'"(?:""|\\"|[^"])*"'
_SQUOTED = r"'(?:''|\\'|[^'])*'"
_SEGMENT = rf"{_BACKTICKED}|{_DQUOTED}|{_SQUOTED}|\w+"
_IDENT_RE = re.compile(rf"(?:{_SEGMENT})(?:\.(?:{_SEGMENT}))*")
_FIRST_SEGMENT_RE = re.compile(rf"{_BACKTICKED}|{_DQUOTED}|{_SQUOTED}|\w+")
_STRING_RE = re.compile(rf"{_SQUOTED}|{_DQUOTED}")
_NUMBER_RE = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_SYMBOL_OP_RE = re.compile(r"!=|<>|==|<=|>=|=|<|>")
_WORD_RE = re.compile(r"\w+")
_WS_RE = re.compile(r"\s*")
_LPAREN_RE = re.compile(r"\(")
_RPAREN_RE = re.compile(r"\)")
_COMMA_RE = re.compile(r",")
_CLAUSE_RE = re.compile(r"\w+|'[^']*'?|\"[^\"]*\"?|\S")

_NUMERIC_OPS = frozenset({Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE})
_STRING_OPS = frozenset({Op.EQ, Op.NE, Op.LIKE, Op.ILIKE})
_LIST_OPS = frozenset({Op.IN, Op.NOT_IN})
_NULL_OPS = frozenset({Op.IS_NULL, Op.IS_NOT_NULL})
_OPS_BY_TEXT = {op.value: op for op in Op}

_KIND_LABEL = {
    Kind.METRIC: "metric",
    Kind.PARAM: "parameter",
    Kind.TAG: "tag",
    Kind.ATTRIBUTE: "attribute",
    Kind.DATASET: "dataset",
    Kind.METADATA: "metadata",
}

_RUN_PREFIXES: dict[str, Kind] = {
    "metric": Kind.METRIC,
    "metrics": Kind.METRIC,
    "parameter": Kind.PARAM,
    "parameters": Kind.PARAM,
    "param": Kind.PARAM,
    "params": Kind.PARAM,
    "tag": Kind.TAG,
    "tags": Kind.TAG,
    "attribute": Kind.ATTRIBUTE,
    "attributes": Kind.ATTRIBUTE,
    "attr": Kind.ATTRIBUTE,
    "run": Kind.ATTRIBUTE,
    "dataset": Kind.DATASET,
    "datasets": Kind.DATASET,
}


@dataclass(frozen=True)
class _Grammar:
    """What one search kind accepts. Attribute maps go from accepted spelling to canonical."""

    what: str
    prefixes: Mapping[str, Kind]
    filter_attributes: Mapping[str, str]
    order_attributes: Mapping[str, str]
    numeric_attributes: frozenset[str]
    list_attributes: frozenset[str] | None  # None: every string attribute takes a list
    ops: Mapping[Kind, frozenset[Op]]
    dataset_keys: frozenset[str] = frozenset()
    order_kinds: frozenset[Kind] = frozenset({Kind.ATTRIBUTE})
    quoted_numbers: bool = False  # accept '3' for numeric attributes (model versions)
    unique_order_keys: bool = False  # MLflow's registry rejects a key ordered twice
    valid_entities: tuple[str, ...] = field(default=())

    def entity_names(self) -> list[str]:
        return list(self.valid_entities) or sorted(self.prefixes)


def _same(*names: str) -> dict[str, str]:
    return {n: n for n in names}


_RUN_ATTRS = _same(
    "run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"
)
_RUNS = _Grammar(
    what="runs",
    prefixes=_RUN_PREFIXES,
    filter_attributes={
        **_RUN_ATTRS,
        "created": "start_time",
        "Created": "start_time",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
    },
    order_attributes={**_RUN_ATTRS, "created": "start_time", "Created": "start_time"},
    numeric_attributes=frozenset({"start_time", "end_time"}),
    list_attributes=frozenset({"run_id"}),
    ops={
        Kind.METRIC: _NUMERIC_OPS,
        Kind.PARAM: _STRING_OPS | _NULL_OPS,
        Kind.TAG: _STRING_OPS | _NULL_OPS,
        Kind.ATTRIBUTE: _STRING_OPS | _LIST_OPS,
        Kind.DATASET: _STRING_OPS | _LIST_OPS,
    },
    dataset_keys=frozenset({"name", "digest", "context"}),
    order_kinds=frozenset({Kind.METRIC, Kind.PARAM, Kind.TAG, Kind.ATTRIBUTE}),
    valid_entities=("metric", "parameter", "tag", "attribute", "dataset"),
)

_ATTR_AND_TAG_PREFIXES = {
    "attribute": Kind.ATTRIBUTE,
    "attributes": Kind.ATTRIBUTE,
    "tag": Kind.TAG,
    "tags": Kind.TAG,
}

_EXPERIMENTS = _Grammar(
    what="experiments",
    prefixes=_ATTR_AND_TAG_PREFIXES,
    filter_attributes=_same("name", "experiment_id", "creation_time", "last_update_time"),
    order_attributes=_same("name", "experiment_id", "creation_time", "last_update_time"),
    numeric_attributes=frozenset({"creation_time", "last_update_time"}),
    list_attributes=frozenset({"experiment_id"}),
    ops={Kind.TAG: _STRING_OPS | _NULL_OPS, Kind.ATTRIBUTE: _STRING_OPS | _LIST_OPS},
    valid_entities=("attribute", "tag"),
)

_LOGGED_MODEL_ATTRS = {
    **_same(
        "name",
        "model_id",
        "model_type",
        "status",
        "source_run_id",
        "creation_timestamp",
        "last_updated_timestamp",
    ),
    "creation_time": "creation_timestamp",
    "last_updated_time": "last_updated_timestamp",
}
_LOGGED_MODELS = _Grammar(
    what="logged models",
    prefixes={k: v for k, v in _RUN_PREFIXES.items() if v is not Kind.DATASET},
    filter_attributes=_LOGGED_MODEL_ATTRS,
    order_attributes=_LOGGED_MODEL_ATTRS,
    numeric_attributes=frozenset({"creation_timestamp", "last_updated_timestamp"}),
    list_attributes=None,
    ops={
        Kind.METRIC: _NUMERIC_OPS,
        Kind.PARAM: _STRING_OPS,
        Kind.TAG: _STRING_OPS,
        Kind.ATTRIBUTE: _STRING_OPS | _LIST_OPS,
    },
    order_kinds=frozenset({Kind.METRIC, Kind.ATTRIBUTE}),
    valid_entities=("metric", "parameter", "tag", "attribute"),
)

_REGISTERED_MODELS = _Grammar(
    what="registered models",
    prefixes=_ATTR_AND_TAG_PREFIXES,
    filter_attributes=_same("name"),
    order_attributes={
        **_same("name", "creation_timestamp", "last_updated_timestamp"),
        "timestamp": "creation_timestamp",
    },
    numeric_attributes=frozenset({"creation_timestamp", "last_updated_timestamp"}),
    list_attributes=frozenset({"name"}),
    ops={Kind.TAG: _STRING_OPS, Kind.ATTRIBUTE: _STRING_OPS | _LIST_OPS},
    unique_order_keys=True,
    valid_entities=("attribute", "tag"),
)

_MODEL_VERSIONS = _Grammar(
    what="model versions",
    prefixes=_ATTR_AND_TAG_PREFIXES,
    filter_attributes=_same("name", "run_id", "source_path", "version_number"),
    order_attributes=_same(
        "name", "version_number", "creation_timestamp", "last_updated_timestamp"
    ),
    numeric_attributes=frozenset(
        {"version_number", "creation_timestamp", "last_updated_timestamp"}
    ),
    list_attributes=frozenset({"name", "run_id"}),
    ops={Kind.TAG: _STRING_OPS, Kind.ATTRIBUTE: _STRING_OPS | _LIST_OPS},
    quoted_numbers=True,
    unique_order_keys=True,
    valid_entities=("attribute", "tag"),
)


#: The tag the trace attribute ``name`` stands for.
TRACE_NAME_TAG = "mlflow.traceName"

_TRACE_ATTRS = {
    **_same(
        "trace_id",
        "status",
        "timestamp_ms",
        "execution_time_ms",
        "end_time_ms",
        "client_request_id",
        "run_id",
        "name",
    ),
    "request_id": "trace_id",
    "state": "status",
    "timestamp": "timestamp_ms",
    "execution_time": "execution_time_ms",
    "end_time": "end_time_ms",
}
_TRACES = _Grammar(
    what="traces",
    prefixes={
        "attribute": Kind.ATTRIBUTE,
        "attributes": Kind.ATTRIBUTE,
        "trace": Kind.ATTRIBUTE,
        "tag": Kind.TAG,
        "tags": Kind.TAG,
        "metadata": Kind.METADATA,
        "request_metadata": Kind.METADATA,
    },
    filter_attributes=_TRACE_ATTRS,
    order_attributes={
        **{k: v for k, v in _TRACE_ATTRS.items() if v != "client_request_id"},
        "experiment_id": "experiment_id",
    },
    numeric_attributes=frozenset({"timestamp_ms", "execution_time_ms", "end_time_ms"}),
    list_attributes=frozenset({"trace_id", "status", "run_id", "client_request_id", "name"}),
    ops={
        Kind.TAG: _STRING_OPS | _NULL_OPS,
        Kind.METADATA: _STRING_OPS | _NULL_OPS,
        Kind.ATTRIBUTE: _STRING_OPS | _LIST_OPS,
    },
    order_kinds=frozenset({Kind.ATTRIBUTE, Kind.TAG, Kind.METADATA}),
    valid_entities=("attribute", "tag", "metadata", "request_metadata"),
)


# --- identifiers ----------------------------------------------------------------------


def _unquote(segment: str) -> str:
    """Strip one pair of backticks or quotes wrapping ``segment``; keep the inside as is."""
    if len(segment) >= 2 and segment[0] == segment[-1] and segment[0] in "`\"'":
        return segment[1:-1]
    return segment


def _split_identifier(text: str) -> tuple[str | None, str]:
    """``entity.key`` → (entity, key); a bare key → (None, key). Only the first dot splits."""
    first = _FIRST_SEGMENT_RE.match(text)
    assert first is not None  # the caller matched _IDENT_RE
    if first.end() == len(text):
        return None, _unquote(text)
    return _unquote(first.group()), _unquote(text[first.end() + 1 :])


def _resolve_identifier(
    grammar: _Grammar, text: str, attributes: Mapping[str, str], *, ordering: bool
) -> Identifier:
    entity, key = _split_identifier(text)
    if entity is None:
        kind = Kind.ATTRIBUTE
    else:
        found = grammar.prefixes.get(entity)
        if found is None:
            raise invalid(
                f"Invalid entity type '{entity}'. Valid values are {grammar.entity_names()}"
            )
        kind = found
    if ordering and kind not in grammar.order_kinds:
        raise invalid(
            f"Invalid identifier type '{kind.value}' in order_by clause for {grammar.what}: "
            f"'{text}'"
        )
    if kind is Kind.ATTRIBUTE:
        canonical = attributes.get(key)
        if canonical is None:
            raise invalid(
                f"Invalid attribute key '{key}' specified. Valid keys are {sorted(set(attributes))}"
            )
        return Identifier(kind, canonical)
    if kind is Kind.DATASET and key not in grammar.dataset_keys:
        raise invalid(
            f"Invalid dataset key '{key}' specified. Valid keys are {sorted(grammar.dataset_keys)}"
        )
    if not key:
        raise invalid(f"Invalid identifier '{text}': the {_KIND_LABEL[kind]} key is empty")
    return Identifier(kind, key)


# --- filters --------------------------------------------------------------------------


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        self.pos = _WS_RE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def match(self, pattern: re.Pattern[str]) -> str | None:
        self.skip_ws()
        m = pattern.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    def peek_word(self) -> str | None:
        self.skip_ws()
        m = _WORD_RE.match(self.text, self.pos)
        return m.group() if m else None

    def next_clause(self) -> str:
        """The next lexical item, for naming it in an error."""
        self.skip_ws()
        m = _CLAUSE_RE.match(self.text, self.pos)
        return m.group() if m else self.text[self.pos :]

    def bad_clause(self) -> Exception:
        return invalid(f"Invalid clause(s) in filter string: '{self.next_clause()}'")


_CONNECTIVES = {"AND", "OR", "NOT"}


def _read_operator(sc: _Scanner, ident_text: str) -> str:
    symbol = sc.match(_SYMBOL_OP_RE)
    if symbol is not None:
        return symbol
    word = sc.peek_word()
    if word is None:
        if sc.at_end():
            raise invalid(f"Invalid filter: no comparison operator after '{ident_text}'")
        raise sc.bad_clause()
    upper = word.upper()
    if upper in ("LIKE", "ILIKE", "IN"):
        sc.match(_WORD_RE)
        return upper
    if upper == "NOT":
        sc.match(_WORD_RE)
        following = (sc.peek_word() or "").upper()
        if following in ("IN", "LIKE", "ILIKE"):
            sc.match(_WORD_RE)
            return f"NOT {following}"
        raise invalid(
            f"Invalid comparator 'NOT {sc.next_clause()}' for '{ident_text}': "
            "expected NOT IN after an identifier"
        )
    if upper == "IS":
        sc.match(_WORD_RE)
        following = (sc.peek_word() or "").upper()
        if following == "NULL":
            sc.match(_WORD_RE)
            return "IS NULL"
        if following == "NOT":
            sc.match(_WORD_RE)
            if (sc.peek_word() or "").upper() == "NULL":
                sc.match(_WORD_RE)
                return "IS NOT NULL"
        raise invalid(f"Invalid comparison after '{ident_text} IS': expected NULL or NOT NULL")
    raise invalid(
        f"Invalid clause(s) in filter string: '{ident_text}', '{word}'. "
        "Expected a comparison operator."
    )


def _parse_string_literal(raw: str) -> str:
    return raw[1:-1]


def _read_list(sc: _Scanner, ident: Identifier) -> tuple[str, ...]:
    if sc.match(_LPAREN_RE) is None:
        raise invalid(
            f"Expected a parenthesised list of quoted strings after IN for '{ident}', "
            f"got '{sc.next_clause()}'"
        )
    items: list[str] = []
    while sc.match(_RPAREN_RE) is None:
        raw = sc.match(_STRING_RE)
        if raw is None:
            got = "the end of the filter" if sc.at_end() else f"'{sc.next_clause()}'"
            raise invalid(
                "While parsing a list in the query, expected a non-empty list of quoted "
                f"string values for '{ident}', but got {got}"
            )
        items.append(_parse_string_literal(raw))
        if sc.match(_COMMA_RE) is not None:
            continue
        if sc.match(_RPAREN_RE) is not None:
            break
        got = "the end of the filter" if sc.at_end() else f"'{sc.next_clause()}'"
        raise invalid(
            f"While parsing a list in the query for '{ident}', expected ',' or ')' but got {got}"
        )
    if not items:
        raise invalid(
            "While parsing a list in the query, expected a non-empty list of string values, "
            f"but got empty list for '{ident}'"
        )
    return tuple(items)


_INT64 = range(-(2**63), 2**63)


def _number(raw: str) -> int | float:
    """An integer literal stays an int while it fits the stores' 64-bit columns; beyond,
    it compares as the float it is closest to (a 100,000-digit literal is ``inf``)."""
    raw = raw.strip()
    if re.fullmatch(r"-?\d+", raw) and len(raw) <= 20 and int(raw) in _INT64:
        return int(raw)
    return float(raw)


def _read_scalar(sc: _Scanner, grammar: _Grammar, ident: Identifier, numeric: bool) -> Value:
    label = _KIND_LABEL[ident.kind]
    raw_string = sc.match(_STRING_RE)
    if raw_string is not None:
        if not numeric:
            return _parse_string_literal(raw_string)
        if grammar.quoted_numbers and re.fullmatch(r"-?\d+", raw_string[1:-1].strip()):
            return _number(raw_string[1:-1])
        if ident.kind is Kind.METRIC:
            raise invalid(
                f"Expected numeric value type for metric. Found {raw_string} for '{ident}'"
            )
        raise invalid(
            f"Expected numeric value type for numeric attribute: {ident.key}. Found {raw_string}"
        )
    raw_number = sc.match(_NUMBER_RE)
    if raw_number is not None:
        if numeric:
            return _number(raw_number)
        raise invalid(
            f"Expected a quoted string value for {label} '{ident.key}' (e.g. 'my-value'). "
            f"Got value {raw_number}"
        )
    got = sc.next_clause() if not sc.at_end() else "nothing"
    if numeric:
        if ident.kind is Kind.METRIC:
            raise invalid(f"Expected numeric value type for metric. Found {got} for '{ident}'")
        raise invalid(
            f"Expected numeric value type for numeric attribute: {ident.key}. Found {got}"
        )
    raise invalid(
        f"Expected a quoted string value for {label} '{ident.key}' (e.g. 'my-value'). "
        f"Got value {got}"
    )


def _is_numeric(grammar: _Grammar, ident: Identifier) -> bool:
    return ident.kind is Kind.METRIC or (
        ident.kind is Kind.ATTRIBUTE and ident.key in grammar.numeric_attributes
    )


def _check_op(grammar: _Grammar, ident: Identifier, op_text: str) -> Op:
    numeric = _is_numeric(grammar, ident)
    allowed = _NUMERIC_OPS if numeric else grammar.ops[ident.kind]
    what = f"{_KIND_LABEL[ident.kind]} '{ident.key}'"
    op = _OPS_BY_TEXT.get(op_text)
    if op in _NULL_OPS and op not in allowed:
        kinds = sorted(_KIND_LABEL[k] + "s" for k, ops in grammar.ops.items() if op in ops)
        if not kinds:
            raise invalid(f"IS NULL / IS NOT NULL is not supported when searching {grammar.what}")
        raise invalid(
            f"IS NULL / IS NOT NULL is only supported for {' and '.join(kinds)} when "
            f"searching {grammar.what}, not for {what}"
        )
    if op is None or op not in allowed:
        raise invalid(
            f"Invalid comparator '{op_text}' not one of {sorted(o.value for o in allowed)} "
            f"for {what}"
        )
    if (
        op in _LIST_OPS
        and ident.kind is Kind.ATTRIBUTE
        and grammar.list_attributes is not None
        and ident.key not in grammar.list_attributes
    ):
        raise invalid(
            f"Only {sorted(grammar.list_attributes)} attributes support comparison with a list "
            f"of quoted string values, not '{ident.key}'."
        )
    return op


def _parse_comparison(sc: _Scanner, grammar: _Grammar) -> Comparison:
    sc.skip_ws()
    start = sc.pos
    m = _IDENT_RE.match(sc.text, sc.pos)
    if m is None or m.group()[0] == "'":
        raise sc.bad_clause()
    text = m.group()
    if text.upper() in _CONNECTIVES:
        raise invalid(f"Invalid clause(s) in filter string: '{text}'")
    sc.pos = m.end()
    ident = _resolve_identifier(grammar, text, grammar.filter_attributes, ordering=False)
    op_text = _read_operator(sc, sc.text[start : m.end()])
    op = _check_op(grammar, ident, op_text)
    if op in _NULL_OPS:
        return Comparison(ident, op, None)
    if op in _LIST_OPS:
        return Comparison(ident, op, _read_list(sc, ident))
    return Comparison(ident, op, _read_scalar(sc, grammar, ident, _is_numeric(grammar, ident)))


def _parse_filter(grammar: _Grammar, text: str | None) -> Filter:
    if text is None:
        return ()
    if not isinstance(text, str):
        raise invalid(f"Invalid filter {text!r}: expected a string")
    if not text.strip():
        return ()
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid(
            f"Invalid filter: {len(text):,} characters exceed the limit of "
            f"{MAX_FILTER_LENGTH:,} characters per search filter"
        )
    sc = _Scanner(text)
    out: list[Comparison] = []
    while True:
        if len(out) == MAX_FILTER_CLAUSES:
            raise invalid(
                f"Invalid filter: more than {MAX_FILTER_CLAUSES} comparisons; a search "
                f"filter may AND together at most {MAX_FILTER_CLAUSES}"
            )
        out.append(_parse_comparison(sc, grammar))
        if sc.at_end():
            return tuple(out)
        if sc.text[sc.pos] == ";":
            sc.pos += 1
            if sc.at_end():
                raise invalid("Invalid clause(s) in filter string: ';'")
            raise invalid(
                f"Search filter contained multiple expression {text!r}. "
                "Provide AND-ed expression list."
            )
        word = sc.peek_word()
        if word is None or word.upper() != "AND":
            raise sc.bad_clause()
        sc.match(_WORD_RE)
        if sc.at_end():
            raise invalid(f"Invalid filter {text!r}: expected a comparison after the final AND")


# --- order by -------------------------------------------------------------------------


def _check_order_by_count(count: int) -> None:
    if count > MAX_ORDER_BY_KEYS:
        raise invalid(
            f"Invalid order_by: {count} keys exceed the limit of {MAX_ORDER_BY_KEYS} "
            "ordering keys per search"
        )


def _parse_order_clause(grammar: _Grammar, clause: str) -> tuple[Identifier, bool]:
    if not isinstance(clause, str):
        raise invalid(f"Invalid order_by clause {clause!r}: expected a string")
    text = clause.strip()
    m = _IDENT_RE.match(text)
    if not text or m is None or text[0] == "'":
        raise invalid(f"Invalid order_by clause '{clause}'. Could not be parsed.")
    ident_text = m.group()
    rest = text[m.end() :]
    ascending = True
    if rest:
        words = rest.split()
        if not rest[0].isspace() or len(words) > 1:
            raise invalid(f"Invalid order_by clause '{clause}'. Could not be parsed.")
        direction = words[0].lower()
        if direction not in ("asc", "desc"):
            raise invalid(f"Invalid ordering key in order_by clause '{clause}'.")
        ascending = direction == "asc"
    ident = _resolve_identifier(grammar, ident_text, grammar.order_attributes, ordering=True)
    return ident, ascending


def _parse_order_by(grammar: _Grammar, clauses: Sequence[str] | None) -> tuple[OrderBy, ...]:
    if not clauses:
        return ()
    if isinstance(clauses, str):
        clauses = [clauses]
    _check_order_by_count(len(clauses))
    out: list[OrderBy] = []
    for clause in clauses:
        ident, ascending = _parse_order_clause(grammar, clause)
        if grammar.unique_order_keys and any(ob.ident == ident for ob in out):
            raise invalid(f"`order_by` contains duplicate fields: {list(clauses)}")
        out.append(OrderBy(ident, ascending))
    return tuple(out)


# --- public API -----------------------------------------------------------------------


def parse_run_filter(s: str | None) -> Filter:
    """Parse a ``runs/search`` filter string; ``None`` or blank means no filter."""
    return _parse_filter(_RUNS, s)


def parse_run_order_by(clauses: Sequence[str] | None) -> tuple[OrderBy, ...]:
    """Parse ``runs/search`` order_by clauses such as ``"metrics.acc DESC"``."""
    return _parse_order_by(_RUNS, clauses)


def parse_experiment_filter(s: str | None) -> Filter:
    """Parse an ``experiments/search`` filter string."""
    return _parse_filter(_EXPERIMENTS, s)


def parse_experiment_order_by(clauses: Sequence[str] | None) -> tuple[OrderBy, ...]:
    """Parse ``experiments/search`` order_by clauses (attributes only)."""
    return _parse_order_by(_EXPERIMENTS, clauses)


def parse_logged_model_filter(s: str | None) -> Filter:
    """Parse a ``logged-models/search`` filter string."""
    return _parse_filter(_LOGGED_MODELS, s)


def parse_logged_model_order_by(items: Sequence[Mapping[str, Any]] | None) -> tuple[OrderBy, ...]:
    """Parse ``logged-models/search`` order_by objects.

    Each item is ``{"field_name": ..., "ascending": True, "dataset_name": ...,
    "dataset_digest": ...}``; ``field_name`` is an attribute (``creation_timestamp``,
    ``name`` …) or ``metrics.<key>``.
    """
    if not items:
        return ()
    _check_order_by_count(len(items))
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise invalid(f"Invalid order_by item {item!r}: `order_by` must be a list of objects")
        field_name = item.get("field_name")
        if not isinstance(field_name, str) or not field_name.strip():
            raise invalid("`field_name` in the `order_by` clause must be specified.")
        m = _IDENT_RE.fullmatch(field_name.strip())
        if m is None or field_name.strip()[0] == "'":
            raise invalid(f"Invalid order by field name: '{field_name}'.")
        ident = _resolve_identifier(
            _LOGGED_MODELS, m.group(), _LOGGED_MODELS.order_attributes, ordering=True
        )
        ascending = item.get("ascending", True)
        if ascending is None:
            ascending = True
        if not isinstance(ascending, bool):
            raise invalid(
                "Value of `ascending` in the `order_by` clause must be a boolean, got "
                f"{ascending!r} for field {field_name}."
            )
        dataset_name = item.get("dataset_name") or None
        dataset_digest = item.get("dataset_digest") or None
        if dataset_digest and not dataset_name:
            raise invalid(
                "`dataset_digest` can only be specified if `dataset_name` is also specified "
                f"(field {field_name})."
            )
        for name, value in (("dataset_name", dataset_name), ("dataset_digest", dataset_digest)):
            if value is not None and not isinstance(value, str):
                raise invalid(f"`{name}` in the `order_by` clause must be a string, got {value!r}")
        if ident.kind is not Kind.METRIC and dataset_name:
            raise invalid(
                f"`dataset_name` in the `order_by` clause applies only to metrics, not to "
                f"'{field_name}'."
            )
        out.append(OrderBy(ident, ascending, dataset_name, dataset_digest))
    return tuple(out)


def parse_registered_model_filter(s: str | None) -> Filter:
    """Parse a ``registered-models/search`` filter string."""
    return _parse_filter(_REGISTERED_MODELS, s)


def parse_registered_model_order_by(clauses: Sequence[str] | None) -> tuple[OrderBy, ...]:
    """Parse ``registered-models/search`` order_by clauses (``timestamp`` = creation)."""
    return _parse_order_by(_REGISTERED_MODELS, clauses)


def parse_model_version_filter(s: str | None) -> Filter:
    """Parse a ``model-versions/search`` filter string."""
    return _parse_filter(_MODEL_VERSIONS, s)


def parse_model_version_order_by(clauses: Sequence[str] | None) -> tuple[OrderBy, ...]:
    """Parse ``model-versions/search`` order_by clauses."""
    return _parse_order_by(_MODEL_VERSIONS, clauses)


def _trace_name_as_tag(ident: Identifier) -> Identifier:
    if ident.kind is Kind.ATTRIBUTE and ident.key == "name":
        return Identifier(Kind.TAG, TRACE_NAME_TAG)
    return ident


def parse_trace_filter(s: str | None) -> Filter:
    """Parse a ``traces/search`` filter string such as ``"status = 'OK' AND
    timestamp_ms > 1700000000000 AND tags.env = 'prod'"``.

    Aliases resolve to the canonical identifiers of :mod:`tracklog.search.ast`:
    ``request_id`` → ``trace_id``, ``state`` → ``status``, ``timestamp`` →
    ``timestamp_ms``, ``request_metadata.k`` → ``metadata.k``, and ``name`` becomes the
    tag ``mlflow.traceName``.
    """
    return tuple(
        Comparison(_trace_name_as_tag(c.ident), c.op, c.value)
        for c in _parse_filter(_TRACES, s)
    )


def parse_trace_order_by(clauses: Sequence[str] | None) -> tuple[OrderBy, ...]:
    """Parse ``traces/search`` order_by clauses such as ``"timestamp_ms DESC"``."""
    return tuple(
        OrderBy(_trace_name_as_tag(ob.ident), ob.ascending)
        for ob in _parse_order_by(_TRACES, clauses)
    )
