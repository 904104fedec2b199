"""JSON Schema checks: schemas at registration, inputs at invocation (jsonschema library)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from gateway.core.models import CapabilitySpec, JSONObject
from gateway.errors import InvalidRequest, SchemaViolation


def check_schema(schema: JSONObject, what: str) -> None:
    """Raises `InvalidRequest` if `schema` is not a valid JSON Schema (2020-12)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(f"{what} is not a valid JSON Schema: {exc.message}") from None


class InputValidator:
    """Validates inputs against capability schemas, compiling each schema once."""

    def __init__(self) -> None:
        # key -> (schema object it was compiled from, validator). A re-registered
        # catalog brings new schema objects, which invalidates the entry.
        self._cache: dict[tuple[str, str, str], tuple[JSONObject, Draft202012Validator]] = {}

    def validate(self, domain: str, capability: CapabilitySpec, value: Any) -> None:
        """Raises `SchemaViolation` naming the JSON path of the most relevant error."""
        key = (domain, capability.name, capability.version)
        cached = self._cache.get(key)
        if cached is None or cached[0] is not capability.input_schema:
            cached = (capability.input_schema, Draft202012Validator(capability.input_schema))
            self._cache[key] = cached
        validator = cached[1]
        # Most inputs are valid: is_valid stops at the first error and skips best_match's
        # bookkeeping; the errors are collected and ranked only for an invalid input.
        if validator.is_valid(value):
            return
        error = best_match(validator.iter_errors(value))
        if error is not None:
            raise SchemaViolation(error.message, error.json_path)
