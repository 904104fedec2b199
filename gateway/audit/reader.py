"""`AuditReader`: what compliance staff may read of the audit trail, and proofs.

Every use case first asks the policy for `audit.read` (object `audit`): allowed on
`*`, the caller sees every record; allowed on some domains, only records whose
source or target is one of them; allowed nowhere, `PolicyDenied`. Each read is
itself recorded (event `policy.decision`, capability `audit`), allowed or not.
Store calls run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gateway.core.audit_event import AuditEvent, EventType
from gateway.core.audit_log import SignedCheckpoint
from gateway.core.audit_proof import ExportManifest
from gateway.core.audit_query import MAX_PAGE, AuditPage, AuditQuery
from gateway.core.audit_record import JSON_FIELDS, AuditRecord, record_to_json
from gateway.core.clock import Clock, utcnow
from gateway.core.decision import Action, Decision
from gateway.core.merkle import consistency_proof, inclusion_proof
from gateway.core.models import Principal
from gateway.core.ports import AuditSink, PolicyDecider
from gateway.core.signed_note import NoteSigner
from gateway.errors import InvalidRequest, NotFound, PolicyDenied
from gateway.store.audit_store import SqlAuditStore

AUDIT_OBJECT = "audit"
"""The policy object of audit reads."""

FEDERATION = "*"

MAX_TRACE_RECORDS = 10_000
"""Most records `trace` returns."""

ExportFormat = Literal["jsonl", "csv"]


@dataclass(frozen=True, slots=True)
class InclusionAnswer:
    """A record, the tree size, the audit path and the signed checkpoint of that size."""

    record: AuditRecord
    tree_size: int
    hashes: list[bytes]
    checkpoint: SignedCheckpoint


@dataclass(frozen=True, slots=True)
class ConsistencyAnswer:
    """Two signed checkpoints and the proof between them."""

    old: SignedCheckpoint
    new: SignedCheckpoint
    hashes: list[bytes]


class AuditReader:
    """Authorized reads of the audit log.

    Args:
        store: The log.
        decider: The shared policy.
        known_domains: The federation's domains (a domain auditor's scope is
            computed among them and the caller's own domain).
        signer: The log's key, which signs export manifests.
        origin: The log's name.
        sink: Where reads are recorded; None records nothing.
    """

    def __init__(
        self,
        store: SqlAuditStore,
        decider: PolicyDecider,
        known_domains: Callable[[], Iterable[str]],
        *,
        signer: NoteSigner,
        origin: str,
        sink: AuditSink | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._decider = decider
        self._known_domains = known_domains
        self._signer = signer
        self._origin = origin
        self._sink = sink
        self._clock = clock

    # --- authorization ---------------------------------------------------------

    async def scope(
        self, principal: Principal, what: str, mentioned: Iterable[str] = ()
    ) -> frozenset[str] | None:
        """The domains `principal` may read (None: all); records the decision.

        A domain auditor's domains are found among the federation's domains, the
        caller's own and those the request names (`mentioned`).

        Raises:
            PolicyDenied: The principal may read the audit trail of no domain.
        """
        decision = self._decider.decide(principal, FEDERATION, AUDIT_OBJECT, Action.AUDIT_READ)
        if decision.allowed:
            await self._record(principal, what, decision, FEDERATION)
            return None
        candidates = {*self._known_domains(), principal.domain, *mentioned} - {""}
        visible: set[str] = set()
        deciding: Decision | None = None
        for domain in sorted(candidates):
            answer = self._decider.decide(principal, domain, AUDIT_OBJECT, Action.AUDIT_READ)
            if answer.allowed:
                visible.add(domain)
                deciding = deciding or answer
        if not visible:
            await self._record(principal, what, decision, FEDERATION)
            raise PolicyDenied(
                f"{principal} may not read the audit trail: it lacks audit.read "
                "on * (every domain) and on every single domain"
            )
        assert deciding is not None
        await self._record(principal, what, deciding, ",".join(sorted(visible)))
        return frozenset(visible)

    async def _record(
        self, principal: Principal, what: str, decision: Decision, target: str
    ) -> None:
        if self._sink is None:
            return
        await self._sink.record(
            [
                AuditEvent(
                    type=EventType.POLICY_DECISION,
                    actor=str(principal),
                    source_domain=principal.domain,
                    target_domain=target,
                    capability=AUDIT_OBJECT,
                    decision="allow" if decision.allowed else "deny",
                    rule=decision.rule,
                    policy_version=decision.policy_version,
                    outcome="read" if decision.allowed else "denied",
                    attributes={"action": str(Action.AUDIT_READ), "request": what},
                )
            ]
        )

    # --- reads -------------------------------------------------------------------

    async def query(self, principal: Principal, query: AuditQuery) -> AuditPage:
        """One page of the records `principal` may see that match `query`."""
        scope = await self.scope(principal, "query", (query.source_domain, query.target_domain))
        scoped = query.scoped_to(scope)
        if scoped.involving is not None and not scoped.involving:
            return AuditPage([], None, 0)
        return await asyncio.to_thread(self._store.query, scoped)

    async def trace(self, principal: Principal, trace_id: str) -> list[AuditRecord]:
        """Every visible record of one trace, oldest first."""
        if not trace_id:
            raise InvalidRequest("trace_id is required")
        scope = await self.scope(principal, f"trace {trace_id}")
        records: list[AuditRecord] = []
        cursor: int | None = None
        while len(records) < MAX_TRACE_RECORDS:
            query = AuditQuery(
                trace_id=trace_id, newest_first=False, cursor=cursor, limit=MAX_PAGE
            ).scoped_to(scope)
            page = await asyncio.to_thread(self._store.query, query)
            records += page.records
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return records

    async def checkpoint(self, principal: Principal, size: int | None) -> SignedCheckpoint:
        """A signed checkpoint: the newest, or the one of `size`.

        Raises:
            NotFound: There is no such checkpoint.
        """
        await self.scope(principal, "checkpoint")
        found = await asyncio.to_thread(self._store.checkpoint, size)
        if found is None:
            raise NotFound(
                f"no checkpoint of size {size}" if size else "the log has no checkpoint yet"
            )
        return found

    async def prove_inclusion(
        self, principal: Principal, seq: int, tree_size: int | None
    ) -> InclusionAnswer:
        """The proof that record `seq` is in the tree of a signed checkpoint.

        Args:
            principal: Who asks; the record must be visible to them.
            seq: The record's position.
            tree_size: A checkpoint's size; None for the newest checkpoint.

        Raises:
            NotFound: No such record (visible to the caller), or no checkpoint covers it.
        """
        scope = await self.scope(principal, f"prove inclusion {seq}")
        record = await asyncio.to_thread(self._store.record, seq)
        if record is None or (
            scope is not None and not {record.source_domain, record.target_domain} & scope
        ):
            raise NotFound(f"no audit record {seq} (that you may see)")
        checkpoint = await asyncio.to_thread(self._store.checkpoint, tree_size)
        if checkpoint is None:
            raise NotFound(f"no checkpoint of size {tree_size}" if tree_size else "no checkpoint")
        if checkpoint.size <= seq:
            raise NotFound(
                f"record {seq} is newer than the checkpoint of size {checkpoint.size}; "
                "checkpoints follow within a second"
            )
        leaves = await asyncio.to_thread(self._store.leaf_hashes, checkpoint.size)
        return InclusionAnswer(record, checkpoint.size, inclusion_proof(seq, leaves), checkpoint)

    async def prove_consistency(
        self, principal: Principal, old_size: int, new_size: int | None
    ) -> ConsistencyAnswer:
        """The proof that the log at checkpoint `old_size` is a prefix of a later one.

        Raises:
            NotFound: One of the checkpoints does not exist.
            InvalidRequest: The sizes do not grow.
        """
        await self.scope(principal, f"prove consistency {old_size}")
        old = await asyncio.to_thread(self._store.checkpoint, old_size)
        new = await asyncio.to_thread(self._store.checkpoint, new_size)
        if old is None or new is None:
            missing = old_size if old is None else new_size
            raise NotFound(f"no checkpoint of size {missing}" if missing else "no checkpoint")
        if old_size <= 0 or new.size < old.size:
            raise InvalidRequest(f"cannot prove {old_size} -> {new.size}: sizes must grow")
        leaves = await asyncio.to_thread(self._store.leaf_hashes, new.size)
        return ConsistencyAnswer(old, new, consistency_proof(old.size, leaves))

    async def export(
        self, principal: Principal, query: AuditQuery, fmt: ExportFormat
    ) -> AsyncIterator[bytes | str]:
        """Streams the matching records covered by the newest checkpoint, then the manifest.

        Yields file content (bytes), and last the signed manifest (str).
        """
        scope = await self.scope(principal, f"export {fmt}")
        checkpoint = await asyncio.to_thread(self._store.checkpoint, None)
        if checkpoint is None:
            raise NotFound("the log has no checkpoint yet: nothing to export")
        digest = hashlib.sha256()
        count = 0
        header = _csv_line(list(JSON_FIELDS)) if fmt == "csv" else b""
        if header:
            digest.update(header)
            yield header
        cursor: int | None = None
        while True:
            page_query = AuditQuery(
                since=query.since,
                until=query.until,
                source_domain=query.source_domain,
                target_domain=query.target_domain,
                actor=query.actor,
                capability=query.capability,
                event_type=query.event_type,
                decision=query.decision,
                outcome=query.outcome,
                classification=query.classification,
                trace_id=query.trace_id,
                involving=query.involving,
                cursor=cursor,
                below=checkpoint.size,
                newest_first=False,
                limit=MAX_PAGE,
            ).scoped_to(scope)
            if page_query.involving is not None and not page_query.involving:
                break
            page = await asyncio.to_thread(self._store.query, page_query)
            chunk = b"".join(_encode(record, fmt) for record in page.records)
            count += len(page.records)
            if chunk:
                digest.update(chunk)
                yield chunk
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        manifest = ExportManifest(
            origin=self._origin,
            sha256=digest.digest(),
            records=count,
            format=fmt,
            checkpoint_size=checkpoint.size,
            checkpoint_root=checkpoint.root_hash,
            created=self._clock(),
        )
        yield manifest.sign(self._signer)


def _encode(record: AuditRecord, fmt: ExportFormat) -> bytes:
    value = record_to_json(record)
    if fmt == "jsonl":
        return (
            json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"
        ).encode()
    return _csv_line([_csv_value(value[name]) for name in JSON_FIELDS])


def _csv_value(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _csv_line(values: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue().encode()
