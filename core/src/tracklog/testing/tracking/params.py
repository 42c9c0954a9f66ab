"""Params: immutable once logged."""

from __future__ import annotations

import pytest

from tracklog.entities import Param
from tracklog.errors import ErrorCode, TracklogError
from tracklog.stores import TrackingStore

from ._base import KitBase, new_experiment, new_run


class ParamTests(KitBase):
    """A param keeps its first value; the same value again is a no-op."""

    def test_log_param(self, store: TrackingStore) -> None:
        """Params read back exactly, empty strings and unicode included."""
        run_id = new_run(store).info.run_id
        store.log_param(run_id, Param("lr", "0.01"))
        store.log_param(run_id, Param("empty", ""))
        store.log_param(run_id, Param("weird key/with.dots-and space:x", "ünïcødé ✓"))
        assert store.get_run(run_id).data.params == {
            "lr": "0.01", "empty": "", "weird key/with.dots-and space:x": "ünïcødé ✓"}

    def test_long_param_value(self, store: TrackingStore) -> None:
        """A value of the protocol's maximum length (6000 characters) round trips."""
        run_id = new_run(store).info.run_id
        value = ("0123456789" * 600)[:6000]
        store.log_param(run_id, Param("long", value))
        assert store.get_run(run_id).data.params["long"] == value

    def test_same_value_is_noop(self, store: TrackingStore) -> None:
        """Logging the same key and value twice succeeds and keeps one param."""
        run_id = new_run(store).info.run_id
        store.log_param(run_id, Param("p", "v"))
        store.log_param(run_id, Param("p", "v"))
        assert store.get_run(run_id).data.params == {"p": "v"}

    def test_changed_value_rejected(self, store: TrackingStore) -> None:
        """Another value for a logged key is INVALID_PARAMETER_VALUE; the first value stays."""
        run_id = new_run(store).info.run_id
        store.log_param(run_id, Param("p", "v"))
        with pytest.raises(TracklogError) as excinfo:
            store.log_param(run_id, Param("p", "w"))
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        with pytest.raises(TracklogError) as excinfo:
            store.log_param(run_id, Param("p", "V"))
        assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
        assert store.get_run(run_id).data.params == {"p": "v"}

    def test_params_belong_to_their_run(self, store: TrackingStore) -> None:
        """The same key may hold different values in different runs."""
        exp_id = new_experiment(store)
        a, b = new_run(store, exp_id).info.run_id, new_run(store, exp_id).info.run_id
        store.log_param(a, Param("p", "1"))
        store.log_param(b, Param("p", "2"))
        assert store.get_run(a).data.params == {"p": "1"}
        assert store.get_run(b).data.params == {"p": "2"}
