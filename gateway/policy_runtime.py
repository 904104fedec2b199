"""The shared policy's parts for one gateway process, built by the composition root.

SqlPolicyStore ──seed (first start)──▶ CasbinPolicy ◀──install── PolicySync
      ▲                                  │ decide()                 ▲   ▲
      └──── PolicyAdministration ────────┘               poll ──────┘   └── LISTEN (PostgreSQL)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from gateway.core.policy import CasbinPolicy, PolicyRule, parse_rules
from gateway.core.policy.admin import PolicyAdministration
from gateway.core.policy.sync import PolicySync, open_policy
from gateway.settings import PolicySettings
from gateway.store.policy_listener import PgPolicyListener
from gateway.store.policy_store import SqlPolicyStore


@dataclass
class PolicyRuntime:
    """The live policy, its store, the replica sync and the admin use cases."""

    policy: CasbinPolicy
    store: SqlPolicyStore
    sync: PolicySync
    admin: PolicyAdministration


def seed_rules(settings: PolicySettings) -> list[PolicyRule]:
    """The rules of the seed files (`<seed_dir>/*.csv`).

    Raises:
        InvalidRequest: A seed file holds an invalid rule (names file and line).
    """
    rules: list[PolicyRule] = []
    for path in settings.seed_files:
        rules.extend(parse_rules(path.read_text(), source=str(path)))
    return rules


def open_policy_runtime(settings: PolicySettings, engine: Engine) -> PolicyRuntime:
    """Seeds an empty store, loads the live policy and prepares its sync (blocking).

    Args:
        settings: The policy settings.
        engine: A migrated engine; on PostgreSQL a LISTEN/NOTIFY listener wakes the
            sync at once when another replica commits a change (unless `notify` is off).
    """
    store = SqlPolicyStore(engine)
    policy = open_policy(
        settings.model.read_text(), store, seed_rules(settings), cache_size=settings.cache_size
    )
    listener = None
    if settings.notify and engine.dialect.name == "postgresql":
        listener = PgPolicyListener(engine.url.render_as_string(hide_password=False))
    sync = PolicySync(policy, store, poll_interval=settings.poll_interval, listener=listener)
    return PolicyRuntime(
        policy=policy, store=store, sync=sync, admin=PolicyAdministration(policy, store, sync)
    )
