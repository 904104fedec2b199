"""Long-running tasks: stored state and events, the manager that runs and follows them.

records.py   StoredTask, StoredEvent, TaskQuery and the task state machine
ports.py     the seams: TaskStore (SQL) and DomainLink (re-attach, answer, cancel)
manager.py   TaskManager: submit through the request chain, get, watch, cancel,
             list, respond; owner leases and re-attaching after a restart
"""
