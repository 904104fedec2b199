"""Tables of the shared policy store (filled by the policy issue).

Defined on the one `gateway.store.tables.metadata`, so migrations are checked against
every table of the gateway.
"""

from __future__ import annotations

from gateway.store.tables import metadata

__all__ = ["metadata"]
