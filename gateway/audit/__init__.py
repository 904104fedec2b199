"""The audit trail at run time: the durable writer, keys, outside checkpoint copies, verification.

DurableAuditSink     queue-fed group-commit writer (one thread per process)
load_or_create_signer / read_verifiers   checkpoint signing key in the state folder
CheckpointDirectory  signed checkpoints copied outside the database
verify_log           recompute and check everything (`fedgate audit verify`)
"""
