"""Redaction for every classification and domain pair of the default policy (real files).

The table says, per (owner, reader), the most sensitive classification the reader
sees whole; everything above it must come back redacted, with the rule that withheld
it, and a record of the right type.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core.audit_event import EventType
from gateway.core.content_hash import ContentHasher
from gateway.core.context.access import ContextAccess
from gateway.core.context.items import ContextItem
from gateway.core.models import Classification, Principal
from gateway.core.policy import CasbinPolicy
from tests.unit.core.policy.conftest import FLOWS_CSV, MODEL, POLICY_CSV

C = Classification
NONE = None
# (owner, reader) -> the highest classification the reader sees whole (None: nothing)
VISIBLE: dict[tuple[str, str], Classification | None] = {
    ("support", "support"): C.RESTRICTED,
    ("risk", "risk"): C.RESTRICTED,
    ("finance", "finance"): C.RESTRICTED,
    ("support", "risk"): C.CONFIDENTIAL,
    ("support", "finance"): C.CONFIDENTIAL,
    ("support", "cli"): C.PUBLIC,
    ("risk", "support"): C.INTERNAL,
    ("risk", "finance"): C.INTERNAL,
    ("risk", "cli"): C.INTERNAL,
    ("finance", "risk"): C.CONFIDENTIAL,
    ("finance", "support"): C.INTERNAL,
    ("finance", "cli"): C.PUBLIC,
    # no context.read for these readers at all: even public context is withheld
    ("support", "auditor"): NONE,
    ("risk", "ghost"): NONE,
}
CASES = [(o, r, c) for (o, r) in VISIBLE for c in Classification]
NOW = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture(scope="module")
def access() -> ContextAccess:
    policy = CasbinPolicy.from_files(MODEL, POLICY_CSV, FLOWS_CSV)
    return ContextAccess(policy, ContentHasher(b"k" * 32))


def item(owner: str, classification: Classification) -> ContextItem:
    return ContextItem(
        trace_id="t1",
        key="case/notes",
        version=3,
        owner=owner,
        classification=classification,
        value={"secret": "value"},
        revision=7,
        written_at=NOW,
        written_by=owner,
        created_at=NOW,
        created_by=owner,
    )


@pytest.mark.parametrize(("owner", "reader", "classification"), CASES)
def test_reader_sees_exactly_what_policy_and_flows_allow(
    access: ContextAccess, owner: str, reader: str, classification: Classification
) -> None:
    limit = VISIBLE[(owner, reader)]
    visible = limit is not None and classification <= limit
    view, decision = access.read(Principal(reader), item(owner, classification))
    assert view.redacted is not visible
    assert decision.allowed is visible
    event = access.read_event(Principal(reader), view, decision, via="get")
    assert (event.source_domain, event.target_domain) == (owner, reader)
    assert event.classifications == (classification.name.lower(),)
    assert event.attributes["key"] == "case/notes"
    assert event.attributes["version"] == 3
    if visible:
        assert view.value == {"secret": "value"}
        assert event.type is EventType.CONTEXT_READ
        assert str(event.attributes["content_hash"]).startswith("hmac-sha256:")
    else:
        # What a redacted view keeps: key, version, classification, owner; never the value.
        assert view.value is None
        assert (view.item.key, view.item.owner, view.item.classification) == (
            "case/notes",
            owner,
            classification,
        )
        assert event.type is EventType.CONTEXT_REDACTED
        assert event.decision == "deny"
        assert "content_hash" not in event.attributes
        expected_rule = "default-deny"
        assert event.rule == expected_rule
        assert view.reason
        assert event.attributes["reason"] == view.reason
        if limit is None:
            assert "context.read" in view.reason
        else:
            assert "may not flow" in view.reason


def test_every_domain_pair_of_the_example_federation_is_in_the_table() -> None:
    domains = ("support", "risk", "finance")
    assert {(o, r) for o in domains for r in domains} <= set(VISIBLE)


@pytest.mark.parametrize(
    ("classification", "accepts", "redacted"),
    [
        (C.CONFIDENTIAL, (C.INTERNAL, C.CONFIDENTIAL), False),
        (C.CONFIDENTIAL, (C.INTERNAL,), True),
        (C.CONFIDENTIAL, (), False),  # nothing declared: the flow rules alone decide
    ],
)
def test_a_capability_gets_nothing_above_what_it_accepts(
    access: ContextAccess,
    classification: Classification,
    accepts: tuple[Classification, ...],
    redacted: bool,
) -> None:
    view, decision = access.read(
        Principal("risk"), item("support", classification), accepts=accepts
    )
    assert view.redacted is redacted
    if redacted:
        assert decision.rule == "capability-accepts"
        assert "at most internal" in view.reason
