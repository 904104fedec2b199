"""The finance domain: issues refunds after its own risk check."""

from domains.finance.app import domain

__all__ = ["domain"]
