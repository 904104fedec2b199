"""SqlRegistryStore has exactly the methods and signatures of the RegistryStore port."""

from __future__ import annotations

import inspect

import pytest

from gateway.core.ports import RegistryStore
from gateway.store.registry_store import SqlRegistryStore

PORT_METHODS = sorted(
    name
    for name, member in vars(RegistryStore).items()
    if inspect.isfunction(member) and not name.startswith("_")
)


def test_the_port_has_the_expected_methods() -> None:
    assert PORT_METHODS == [
        "deregister",
        "get_domain",
        "list_domains",
        "reap_expired",
        "register",
        "renew",
    ]


@pytest.mark.parametrize("name", PORT_METHODS)
def test_signature_matches_the_port(name: str) -> None:
    port = inspect.signature(getattr(RegistryStore, name))
    implementation = inspect.signature(getattr(SqlRegistryStore, name))

    # Annotations are strings (postponed evaluation) in both modules.
    assert implementation == port
