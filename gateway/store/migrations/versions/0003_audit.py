"""The audit trail (placeholder until the audit issue fills it).

Revision ID: 0003_audit
Revises: 0002_policies
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003_audit"
down_revision: str | Sequence[str] | None = "0002_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
