"""Conversion between registry rows and core models.

Schemas are stored as canonical JSON text (sorted keys) and classifications as
JSON lists of their integer values, so any backend stores them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from gateway.core.models import CapabilitySpec, CapabilityTarget, Classification, EndpointRecord
from gateway.core.names import parse_capability_ref

_MILLISECOND = timedelta(milliseconds=1)


def capability_row(domain: str, spec: CapabilitySpec) -> dict[str, Any]:
    """The `capabilities` row of one capability of `domain`."""
    return {
        "domain": domain,
        "name": spec.name,
        "version": spec.version,
        "description": spec.description,
        "input_schema": _dump_json(spec.input_schema),
        "output_schema": _dump_json(spec.output_schema),
        "idempotent": spec.idempotent,
        "default_timeout_ms": spec.default_timeout // _MILLISECOND,
        "accepts": _dump_json([int(c) for c in spec.accepts]),
        "returns": _dump_json([int(c) for c in spec.returns]),
        "fallback": str(spec.fallback) if spec.fallback is not None else None,
    }


def capability_from_row(row: RowMapping) -> CapabilitySpec:
    """The capability a `capabilities` row holds."""
    return CapabilitySpec(
        name=row["name"],
        version=row["version"],
        description=row["description"],
        input_schema=json.loads(row["input_schema"]),
        output_schema=json.loads(row["output_schema"]),
        idempotent=bool(row["idempotent"]),
        default_timeout=timedelta(milliseconds=row["default_timeout_ms"]),
        accepts=_classifications(row["accepts"]),
        returns=_classifications(row["returns"]),
        fallback=_target(row["fallback"]) if row["fallback"] else None,
    )


def _target(text: str) -> CapabilityTarget:
    domain, name, version = parse_capability_ref(text)
    return CapabilityTarget(domain, name, version)


def endpoint_from_row(row: RowMapping) -> EndpointRecord:
    """The endpoint an `endpoints` row holds."""
    return EndpointRecord(
        domain=row["domain"],
        address=row["address"],
        lease_id=row["lease_id"],
        lease_expires_at=row["lease_expires_at"],
        registered_at=row["registered_at"],
    )


def _dump_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _classifications(text: str) -> tuple[Classification, ...]:
    values: Sequence[int] = json.loads(text)
    return tuple(Classification(v) for v in values)
