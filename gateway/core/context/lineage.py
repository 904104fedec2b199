"""Lineage of a context item: where it went, from the audit trail alone.

Answers "where did this customer's data go?": every domain and task that wrote,
read, or was refused one item of one trace, in log order, with versions,
classifications and content hashes. The trail holds everything needed (the
`context.written|read|redacted` records), so lineage outlives the item itself:
purged or deleted items keep theirs.

Rendered as rows (table, JSON) or as a Graphviz DOT graph: the item in the middle,
writers pointing at it, readers pointed at; refusals dashed red.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway.core.audit_event import EventType
from gateway.core.audit_record import AuditRecord

CONTEXT_EVENTS = frozenset(
    {EventType.CONTEXT_WRITTEN, EventType.CONTEXT_READ, EventType.CONTEXT_REDACTED}
)

REFUSED = frozenset({"denied", "stale", "refused", "missing", "redacted"})
"""Step outcomes where nothing was written or nothing crossed."""


@dataclass(frozen=True, slots=True)
class LineageStep:
    """One thing that happened to the item, as its audit record tells it."""

    seq: int
    """The record's position in the log."""
    time: datetime
    action: str
    """`written`, `deleted`, `read`, `redacted`, `denied`, `stale`, `refused` or `missing`."""
    domain: str
    """The domain that wrote the item, or that received (or was refused) it."""
    actor: str
    """The principal that acted (the caller of an Invoke for attached context)."""
    owner: str
    task_id: str
    capability: str
    version: int
    """The version written or read; 0 when none was (a refused write)."""
    classification: str
    decision: str
    rule: str
    via: str
    """How a read happened: `get`, `list`, `history`, `watch` or `invoke`."""
    content_hash: str


def lineage_of(records: Iterable[AuditRecord], key: str) -> list[LineageStep]:
    """The steps of item `key` among the records of one trace, in log order."""
    steps: list[LineageStep] = []
    for record in sorted(records, key=lambda r: r.seq):
        if record.event_type not in CONTEXT_EVENTS:
            continue
        attributes = record.attribute_values()
        if attributes.get("key") != key:
            continue
        written = record.event_type == EventType.CONTEXT_WRITTEN
        steps.append(
            LineageStep(
                seq=record.seq,
                time=record.log_time,
                action=record.outcome,
                domain=record.source_domain if written else record.target_domain,
                actor=record.actor,
                owner=record.target_domain if written else record.source_domain,
                task_id=record.span_id,
                capability=record.capability,
                version=int(attributes.get("version") or 0),
                classification=record.classifications[0] if record.classifications else "",
                decision=record.decision,
                rule=record.rule,
                via=str(attributes.get("via", "")),
                content_hash=str(attributes.get("content_hash", "")),
            )
        )
    return steps


def lineage_dot(trace_id: str, key: str, steps: Iterable[LineageStep]) -> str:
    """A Graphviz DOT graph of the steps: domains around the item, one edge per step."""
    item = f"item:{key}"
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica"]; edge [fontname="Helvetica", fontsize=10];',
        f"  {_quote(item)} [shape=note, label={_quote(key, f'trace {trace_id}')}];",
    ]
    domains: list[str] = []
    edges: list[str] = []
    for step in steps:
        if step.domain not in domains:
            domains.append(step.domain)
        version = f" v{step.version}" if step.version else ""
        label = f"#{step.seq} {step.action}{version}"
        if step.classification:
            label += f" ({step.classification})"
        if step.via and step.via != "invoke":
            label += f" via {step.via}"
        elif step.capability:
            label += f" to {step.capability}"
        style = ', style=dashed, color="#c0392b"' if step.action in REFUSED else ""
        writing = step.action in ("written", "deleted", "denied", "stale", "refused", "missing")
        source, target = (step.domain, item) if writing else (item, step.domain)
        edges.append(f"  {_quote(source)} -> {_quote(target)} [label={_quote(label)}{style}];")
    lines += [f"  {_quote(d)} [shape=box, style=rounded];" for d in domains]
    lines += edges
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(*lines: str) -> str:
    # One DOT string; `\n` (backslash, n) is DOT's line break inside a label.
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'
