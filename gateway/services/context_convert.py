"""Conversion between `federation.v1` context messages and the core's context types.

Used by the gateway's ContextService, the domain transport (attached items) and the
clients (SDK, CLI). Values travel as JSON text, so numbers keep their type and a
value hashes the same on every side.
"""

from __future__ import annotations

import json
from typing import Any

from federation.v1 import context_pb2 as ctx
from gateway.core.context.items import ContextItem, ContextView, ContextWrite
from gateway.core.models import Classification
from gateway.errors import InvalidRequest
from gateway.services.convert import (
    classification_from_proto,
    classification_to_proto,
    timestamp_from_proto,
    timestamp_to_proto,
)


def view_to_proto(view: ContextView) -> ctx.ContextItem:
    """A view (whole or redacted) as a wire item; a redacted one carries no value."""
    item = view.item
    message = ctx.ContextItem(
        trace_id=item.trace_id,
        key=item.key,
        version=item.version,
        owner=item.owner,
        classification=classification_to_proto(item.classification),
        value_json="" if view.redacted or item.deleted else encode_value(item.value),
        revision=item.revision,
        written_at=timestamp_to_proto(item.written_at),
        written_by=item.written_by,
        created_at=timestamp_to_proto(item.created_at),
        created_by=item.created_by,
        deleted=item.deleted,
        redacted=view.redacted,
        redaction_reason=view.reason,
    )
    if item.expires_at is not None:
        message.expires_at.CopyFrom(timestamp_to_proto(item.expires_at))
    return message


def view_from_proto(message: ctx.ContextItem) -> ContextView:
    """A wire item as a view (clients and domains receiving attached context)."""
    value = None if message.redacted or not message.value_json else decode_value(message.value_json)
    item = ContextItem(
        trace_id=message.trace_id,
        key=message.key,
        version=message.version,
        owner=message.owner,
        classification=classification_from_proto(message.classification),
        value=value,
        revision=message.revision,
        written_at=timestamp_from_proto(message.written_at),
        written_by=message.written_by,
        created_at=timestamp_from_proto(message.created_at),
        created_by=message.created_by,
        expires_at=timestamp_from_proto(message.expires_at)
        if message.HasField("expires_at")
        else None,
        deleted=message.deleted,
    )
    return ContextView(item, redacted=message.redacted, reason=message.redaction_reason)


def write_from_proto(request: ctx.PutContextRequest) -> ContextWrite:
    """A Put request as a core write; the value must be JSON text."""
    if not request.value_json:
        raise InvalidRequest("value_json is required (any JSON document, as text)")
    classification: Classification | None = None
    if request.classification:
        classification = classification_from_proto(request.classification)
    return ContextWrite(
        trace_id=request.trace_id,
        key=request.key,
        value=decode_value(request.value_json),
        classification=classification,
        expected_version=request.expected_version if request.HasField("expected_version") else None,
        ttl_seconds=request.ttl.ToTimedelta().total_seconds() if request.HasField("ttl") else None,
        grant=request.grant,
    )


def encode_value(value: Any) -> str:
    """A JSON value as compact text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode_value(text: str) -> Any:
    """JSON text as a value; `InvalidRequest` when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"context value is not valid JSON: {exc}") from None
