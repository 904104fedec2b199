"""Validation of the names the federation uses for domains and capabilities."""

from __future__ import annotations

import re

from gateway.errors import InvalidRequest

NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{1,62}")
"""Domain and capability names: lowercase, start with a letter, 2-63 characters."""

AGENT_PATTERN = re.compile(r"agent/[a-z][a-z0-9-]{1,62}")
"""Agent names asserted inside a domain, for example `agent/reconciler`."""


def check_name(kind: str, value: str) -> str:
    """Returns `value` if it is a valid name, else raises `InvalidRequest` naming `kind`."""
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidRequest(f"invalid {kind} name {value!r}: must match [a-z][a-z0-9-]{{1,62}}")
    return value


def check_agent(value: str) -> str:
    """Returns `value` if it is empty or a valid agent name, else raises `InvalidRequest`."""
    if value and not AGENT_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"invalid agent name {value!r}: "
            "must look like agent/<name>, name [a-z][a-z0-9-]{1,62}"
        )
    return value


def parse_capability_ref(text: str) -> tuple[str, str, str]:
    """Parses `domain/name[@version]` into its parts, validating both names."""
    target, _, version = text.partition("@")
    domain, sep, name = target.partition("/")
    if not sep:
        raise InvalidRequest(f"invalid capability reference {text!r}: expected DOMAIN/CAPABILITY")
    return check_name("domain", domain), check_name("capability", name), version
