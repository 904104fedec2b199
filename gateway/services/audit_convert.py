"""Conversion between audit protobuf messages and core audit types, both ways.

Records round-trip exactly: times keep their microseconds and attributes travel as
their canonical JSON text, so a client recomputes a record's leaf hash from the
message and checks it against a signed checkpoint.
"""

from __future__ import annotations

from federation.v1 import audit_pb2 as au
from gateway.core.audit_log import SignedCheckpoint
from gateway.core.audit_proof import ConsistencyBundle, InclusionBundle
from gateway.core.audit_query import DEFAULT_PAGE, AuditQuery
from gateway.core.audit_record import AuditRecord
from gateway.core.context.lineage import LineageStep
from gateway.services.convert import timestamp_from_proto, timestamp_to_proto


def record_to_proto(record: AuditRecord) -> au.AuditRecord:
    """A record as a message."""
    return au.AuditRecord(
        seq=record.seq,
        event_id=record.event_id,
        event_type=record.event_type,
        caller_time=timestamp_to_proto(record.caller_time),
        log_time=timestamp_to_proto(record.log_time),
        trace_id=record.trace_id,
        span_id=record.span_id,
        parent_span_id=record.parent_span_id,
        actor=record.actor,
        source_domain=record.source_domain,
        target_domain=record.target_domain,
        capability=record.capability,
        decision=record.decision,
        rule=record.rule,
        policy_version=record.policy_version,
        outcome=record.outcome,
        duration_us=record.duration_us,
        classifications=list(record.classifications),
        attributes_json=record.attributes,
        leaf_hash=record.leaf_hash,
        chain_hash=record.chain_hash,
    )


def record_from_proto(message: au.AuditRecord) -> AuditRecord:
    """The record a message holds."""
    return AuditRecord(
        seq=message.seq,
        event_id=message.event_id,
        event_type=message.event_type,
        caller_time=timestamp_from_proto(message.caller_time),
        log_time=timestamp_from_proto(message.log_time),
        trace_id=message.trace_id,
        span_id=message.span_id,
        parent_span_id=message.parent_span_id,
        actor=message.actor,
        source_domain=message.source_domain,
        target_domain=message.target_domain,
        capability=message.capability,
        decision=message.decision,
        rule=message.rule,
        policy_version=message.policy_version,
        outcome=message.outcome,
        duration_us=message.duration_us,
        classifications=tuple(message.classifications),
        attributes=message.attributes_json,
        leaf_hash=message.leaf_hash,
        chain_hash=message.chain_hash,
    )


def query_from_proto(
    message: au.AuditFilter,
    *,
    cursor: int | None = None,
    oldest_first: bool = False,
    page_size: int = 0,
) -> AuditQuery:
    """The query a filter (and paging) describes; validates page size and cursor."""
    return AuditQuery(
        since=timestamp_from_proto(message.since) if message.HasField("since") else None,
        until=timestamp_from_proto(message.until) if message.HasField("until") else None,
        source_domain=message.source_domain,
        target_domain=message.target_domain,
        actor=message.actor,
        capability=message.capability,
        event_type=message.event_type,
        decision=message.decision,
        outcome=message.outcome,
        classification=message.classification,
        trace_id=message.trace_id,
        cursor=cursor,
        newest_first=not oldest_first,
        limit=page_size or DEFAULT_PAGE,
    )


def checkpoint_to_proto(checkpoint: SignedCheckpoint) -> au.SignedCheckpoint:
    """A stored checkpoint as a message."""
    return au.SignedCheckpoint(
        size=checkpoint.size,
        root_hash=checkpoint.root_hash,
        note=checkpoint.note,
        created_at=timestamp_to_proto(checkpoint.created_at),
    )


def inclusion_bundle(message: au.InclusionProof) -> InclusionBundle:
    """The offline-checkable bundle of an inclusion proof message."""
    return InclusionBundle(
        record_from_proto(message.record),
        message.tree_size,
        tuple(message.hashes),
        message.checkpoint.note,
    )


def consistency_bundle(message: au.ConsistencyProof) -> ConsistencyBundle:
    """The offline-checkable bundle of a consistency proof message."""
    return ConsistencyBundle(
        message.old_checkpoint.note, message.new_checkpoint.note, tuple(message.hashes)
    )


def lineage_step_to_proto(step: LineageStep) -> au.LineageStep:
    """A lineage step as its wire message."""
    return au.LineageStep(
        seq=step.seq,
        time=timestamp_to_proto(step.time),
        action=step.action,
        domain=step.domain,
        actor=step.actor,
        owner=step.owner,
        task_id=step.task_id,
        capability=step.capability,
        version=step.version,
        classification=step.classification,
        decision=step.decision,
        rule=step.rule,
        via=step.via,
        content_hash=step.content_hash,
    )


def lineage_step_from_proto(message: au.LineageStep) -> LineageStep:
    """A wire lineage step (the CLI renders it)."""
    return LineageStep(
        seq=message.seq,
        time=timestamp_from_proto(message.time),
        action=message.action,
        domain=message.domain,
        actor=message.actor,
        owner=message.owner,
        task_id=message.task_id,
        capability=message.capability,
        version=message.version,
        classification=message.classification,
        decision=message.decision,
        rule=message.rule,
        via=message.via,
        content_hash=message.content_hash,
    )
