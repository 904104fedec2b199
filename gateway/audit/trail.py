"""Opening the audit trail from settings: keys, checkpoint schedule, outside copies, writer."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from gateway.audit.keys import load_or_create_content_key, load_or_create_signer
from gateway.audit.outside import CheckpointDirectory
from gateway.audit.writer import DurableAuditSink
from gateway.core.audit_log import Checkpointer
from gateway.core.content_hash import ContentHasher
from gateway.settings import Settings
from gateway.store.audit_store import SqlAuditStore

log = logging.getLogger(__name__)


def open_audit_trail(settings: Settings, engine: Engine) -> DurableAuditSink:
    """The durable audit sink on a migrated engine, as `settings.audit` describes it.

    Creates the checkpoint signing key at first start, and publishes its verifier
    key next to the outside checkpoint copies, so auditors find both in one place.
    """
    config = settings.audit
    signer = load_or_create_signer(config.signing_key_file(settings.state_dir), config.origin)
    outside = CheckpointDirectory(config.checkpoint_directory(settings.state_dir))
    outside.publish_key(signer.verifier)
    sink = DurableAuditSink(
        SqlAuditStore(engine),
        checkpointer=Checkpointer(
            config.origin,
            signer,
            every_records=config.checkpoint_every_records,
            every_seconds=config.checkpoint_every_seconds,
        ),
        outside=outside,
        max_batch=config.max_batch,
        strict=config.mode == "strict",
    )
    log.info(
        "audit trail %s (%s mode), checkpoints signed by %s, copied to %s",
        config.origin,
        config.mode,
        signer.verifier.vkey,
        outside.path,
    )
    if config.mode != "strict":
        log.warning("audit trail in relaxed mode: answered calls may have no durable record")
    return sink


def open_content_hasher(settings: Settings) -> ContentHasher:
    """The keyed hasher for context content in audit records (key created at first start).

    Every replica must use the same key file (`audit.content_key`), or equal values
    hash differently on different replicas.
    """
    return ContentHasher(
        load_or_create_content_key(settings.audit.content_key_file(settings.state_dir))
    )
