import pytest

from tracklog.errors import ErrorCode, TracklogError, http_status_for

# The statuses MLflow's client expects ("Success and errors" in docs/protocol.md).
EXPECTED = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "CUSTOMER_UNAUTHORIZED": 401,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_CONFLICT": 409,
    "RESOURCE_EXHAUSTED": 429,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "CANCELLED": 499,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "IO_ERROR": 500,
}


@pytest.mark.parametrize("code, status", sorted(EXPECTED.items()))
def test_status_per_code(code, status):
    assert http_status_for(code) == status
    assert TracklogError("m", code).http_status == status


def test_codes_match_mlflow_client():
    """Every code tracklog can send is one the MLflow client knows by name; otherwise the
    client would log a warning and treat it as INTERNAL_ERROR."""
    from mlflow.protos.databricks_pb2 import ErrorCode as MlflowErrorCode

    known = set(MlflowErrorCode.keys())
    assert {c.value for c in ErrorCode} <= known


def test_unknown_code_is_500():
    assert http_status_for("SOMETHING_ELSE") == 500


def test_to_dict_is_the_wire_shape():
    err = TracklogError("Run with id=abc not found", ErrorCode.RESOURCE_DOES_NOT_EXIST)
    assert err.to_dict() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Run with id=abc not found",
    }
    assert str(err) == "Run with id=abc not found"


def test_not_active_is_mlflows_message():
    from tracklog.entities import LifecycleStage
    from tracklog.errors import not_active

    err = not_active("run", "abc", LifecycleStage.DELETED)
    assert err.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    assert err.message == "The run abc must be in the 'active' state. Current state is deleted."
