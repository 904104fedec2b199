"""Who is calling, from the call's metadata.

Until mTLS lands (the identity issue) the caller's domain is self-asserted in
`fedgate-caller-domain`; this module is the one place that changes then.
"""

from __future__ import annotations

import grpc

from gateway.core.models import Principal
from gateway.core.names import check_agent, check_name
from gateway.errors import InvalidRequest, Unauthenticated
from gateway.services import metadata


def caller_of(context: grpc.aio.ServicerContext[object, object], agent: str = "") -> Principal:
    """The calling principal; `agent` from the request overrides the metadata's."""
    values = dict(context.invocation_metadata() or ())
    domain = values.get(metadata.CALLER_DOMAIN, "")
    if not isinstance(domain, str) or not domain:
        raise Unauthenticated(
            f"no caller identity: set the {metadata.CALLER_DOMAIN} metadata to your domain"
        )
    try:
        check_name("domain", domain)
    except InvalidRequest as exc:
        raise Unauthenticated(exc.message) from None
    asserted = agent or values.get(metadata.CALLER_AGENT, "")
    return Principal(
        domain=domain, agent=check_agent(asserted if isinstance(asserted, str) else "")
    )


def call_path_of(context: grpc.aio.ServicerContext[object, object]) -> tuple[str, ...]:
    """The call path the caller's SDK echoed (used when the parent task is not local)."""
    value = dict(context.invocation_metadata() or ()).get(metadata.CALL_PATH, "")
    return metadata.decode_call_path(value) if isinstance(value, str) else ()
