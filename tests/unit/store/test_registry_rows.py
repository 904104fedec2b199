"""Capabilities survive the trip to a row and back; JSON is canonical."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.models import CapabilitySpec, Classification
from gateway.store.registry_rows import capability_from_row, capability_row


def test_capability_round_trips_through_its_row() -> None:
    spec = CapabilitySpec(
        name="reconcile",
        version="2.1",
        description="Reconciles ledgers",
        input_schema={"type": "object", "required": ["month"]},
        output_schema={"type": "array"},
        idempotent=True,
        default_timeout=timedelta(seconds=2, milliseconds=500),
        accepts=(Classification.INTERNAL, Classification.RESTRICTED),
        returns=(Classification.PUBLIC,),
    )

    row = capability_row("finance", spec)

    assert row["domain"] == "finance"
    assert row["default_timeout_ms"] == 2500
    assert row["accepts"] == "[2,4]"
    assert capability_from_row(row) == spec  # type: ignore[arg-type]


def test_schemas_are_stored_as_canonical_json() -> None:
    spec = CapabilitySpec(name="a", version="1", input_schema={"z": 1, "a": {"y": 2, "b": 3}})

    assert capability_row("d", spec)["input_schema"] == '{"a":{"b":3,"y":2},"z":1}'


def test_defaults_round_trip() -> None:
    spec = CapabilitySpec(name="a", version="1")

    assert capability_from_row(capability_row("d", spec)) == spec  # type: ignore[arg-type]
