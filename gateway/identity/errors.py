"""Errors of the identity package (tree in the package docstring)."""

from __future__ import annotations


class IdentityError(Exception):
    """A certificate setup that cannot be used; the message says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingCredentials(IdentityError):
    """A certificate, key or CA file is not where it should be."""


class InvalidCertificate(IdentityError):
    """A certificate is unreadable, expired, not issued by the CA, or names no identity."""
