"""Write grants: how a domain's context write-back proves which task it belongs to.

When the gateway hands a task to a domain it signs a grant naming the task, its
trace, the executing domain, the capability and the highest classification that
capability declares it returns. The domain (the SDK does it) sends the grant with
every context write it makes for the task; any replica holding the federation's
shared key checks it, so a write-back above the declared classification is refused
wherever it lands.

    grant = base64url(JSON claims) "." hex(HMAC-SHA256(grant key, base64url part))

The grant key is derived from the audit content key (`audit.content_key`), which
every replica already shares.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.core.models import Classification
from gateway.errors import PolicyDenied

_LABEL = b"fedgate/context-write-grant/v1"

_CLAIMS_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
"""Canonical claims JSON; built once (`json.dumps` with options builds an encoder per call)."""


@dataclass(frozen=True, slots=True)
class WriteGrant:
    """What a grant allows: writes into one trace by one domain, for one task."""

    task_id: str
    trace_id: str
    domain: str
    capability: str
    """`domain/name@version` of the capability the task runs."""
    classification: Classification
    """The highest classification the capability declares it returns."""
    expires_at: datetime


class GrantSigner:
    """Issues and checks write grants.

    Args:
        shared_key: The federation's shared secret (the audit content key); the
            grant key is derived from it, so the two uses never share a key.
    """

    def __init__(self, shared_key: bytes) -> None:
        key = hmac.new(shared_key, _LABEL, hashlib.sha256).digest()
        # Keyed once; each signature copies it (every task gets a grant).
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def issue(self, grant: WriteGrant) -> str:
        """The signed token of `grant`."""
        claims = {
            "task": grant.task_id,
            "trace": grant.trace_id,
            "domain": grant.domain,
            "capability": grant.capability,
            "classification": int(grant.classification),
            "exp": int(grant.expires_at.timestamp()),
        }
        body = base64.urlsafe_b64encode(_CLAIMS_JSON.encode(claims).encode()).decode()
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, *, now: datetime) -> WriteGrant:
        """The grant a token carries.

        Raises:
            PolicyDenied: The token is malformed, forged or expired.
        """
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(self._sign(body), signature):
            raise PolicyDenied("the context write grant is not valid (forged or malformed)")
        try:
            claims = json.loads(base64.urlsafe_b64decode(body.encode()))
            grant = WriteGrant(
                task_id=str(claims["task"]),
                trace_id=str(claims["trace"]),
                domain=str(claims["domain"]),
                capability=str(claims["capability"]),
                classification=Classification(int(claims["classification"])),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PolicyDenied("the context write grant is not valid (bad claims)") from exc
        if grant.expires_at <= now:
            raise PolicyDenied(f"the context write grant of task {grant.task_id} has expired")
        return grant

    def _sign(self, body: str) -> str:
        mac = self._mac.copy()
        mac.update(body.encode())
        return mac.hexdigest()
