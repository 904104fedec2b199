"""The federation's shared context space (no gRPC): items, governed access, use cases.

items.py    ContextItem, ContextView, ContextWrite; key and trace validation
access.py   read and write decisions (policy + flows + declarations), audit records
grant.py    signed write grants for a task's write-backs
changes.py  wake-ups for Watch streams
ports.py    ContextStore (implemented in gateway.store.context_store)
space.py    ContextSpace: Put, Get, List, History, Delete, Watch, Invoke attachments
"""

from gateway.core.context.access import ContextAccess, ContextPolicy
from gateway.core.context.changes import ChangeSignals
from gateway.core.context.grant import GrantSigner, WriteGrant
from gateway.core.context.items import ContextItem, ContextView, ContextWrite
from gateway.core.context.ports import ContextStore
from gateway.core.context.space import ContextLimits, ContextSpace

__all__ = [
    "ChangeSignals",
    "ContextAccess",
    "ContextItem",
    "ContextLimits",
    "ContextPolicy",
    "ContextSpace",
    "ContextStore",
    "ContextView",
    "ContextWrite",
    "GrantSigner",
    "WriteGrant",
]
