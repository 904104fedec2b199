"""SQL stores of the gateway (SQLAlchemy Core; SQLite by default, PostgreSQL to scale).

Open an engine, migrate it, then build stores on it:

    engine = open_engine(settings.effective_database_url)
    migrate(engine)
    registry_store = SqlRegistryStore(engine)
"""

# Importing every table module registers its tables on the shared metadata.
from gateway.store import (  # noqa: F401
    audit_tables,
    context_tables,
    idempotency_tables,
    policy_tables,
    task_tables,
)
from gateway.store.database import migrate, open_engine
from gateway.store.registry_store import SqlRegistryStore

__all__ = ["SqlRegistryStore", "migrate", "open_engine"]
