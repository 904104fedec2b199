"""The real policy files and a policy compiled from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.policy import CasbinPolicy

POLICIES = Path(__file__).resolve().parents[4] / "policies"
MODEL = POLICIES / "model.conf"
POLICY_CSV = POLICIES / "policy.csv"
FLOWS_CSV = POLICIES / "flows.csv"


@pytest.fixture(scope="module")
def default_policy() -> CasbinPolicy:
    """The default shared policy exactly as `policies/` ships it."""
    return CasbinPolicy.from_files(MODEL, POLICY_CSV, FLOWS_CSV)
