"""The federation's shared context space (no gRPC): items, governed access, use cases.

    items.py    ContextItem, ContextView, ContextWrite; key and trace validation
    access.py   read and write decisions (policy + flows + declarations), audit records
    grant.py    signed write grants for a task's write-backs
    changes.py  wake-ups for Watch streams
    ports.py    ContextStore (implemented in gateway.store.context_store)
    space.py    ContextSpace: Put, Get, List, History, Delete, Watch, Invoke attachments
    lineage.py  where an item went, from the audit trail

Import from the modules; this package does not re-export (`gateway.core.task` uses
`items`, and `space` uses `gateway.core.task`).
"""
