"""The support domain: opens refund cases for customers."""

from domains.support.app import domain

__all__ = ["domain"]
