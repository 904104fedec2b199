from __future__ import annotations

import pytest

from gateway.core.models import CapabilitySpec
from gateway.core.schema import InputValidator, check_schema
from gateway.errors import InvalidRequest, SchemaViolation

SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "customer": {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"],
        },
    },
    "required": ["amount", "customer"],
}


def _cap(schema: dict[str, object]) -> CapabilitySpec:
    return CapabilitySpec(name="refund", version="1", input_schema=schema)


def test_valid_input_passes() -> None:
    InputValidator().validate("finance", _cap(SCHEMA), {"amount": 3, "customer": {"id": "c1"}})


def test_violation_names_the_json_path() -> None:
    with pytest.raises(SchemaViolation) as info:
        InputValidator().validate("finance", _cap(SCHEMA), {"amount": 3, "customer": {"id": 7}})
    assert info.value.json_path == "$.customer.id"
    assert "$.customer.id" in info.value.message


def test_missing_required_field_is_reported() -> None:
    with pytest.raises(SchemaViolation, match="'amount' is a required property"):
        InputValidator().validate("finance", _cap(SCHEMA), {"customer": {"id": "c"}})


def test_integral_doubles_count_as_integers() -> None:
    # protobuf Struct carries every number as a double.
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    InputValidator().validate("d", _cap(schema), {"n": 3.0})
    with pytest.raises(SchemaViolation):
        InputValidator().validate("d", _cap(schema), {"n": 3.5})


def test_a_new_schema_object_replaces_the_compiled_validator() -> None:
    validator = InputValidator()
    validator.validate("d", _cap({"type": "object"}), {"x": 1})
    with pytest.raises(SchemaViolation):
        validator.validate("d", _cap({"type": "object", "required": ["y"]}), {"x": 1})


def test_invalid_schema_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="not a valid JSON Schema"):
        check_schema({"type": "no-such-type"}, "capability x: input schema")
