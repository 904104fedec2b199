"""The risk domain: scores refunds and payments for fraud risk."""

from domains.risk.app import domain

__all__ = ["domain"]
