"""Capabilities declared as typed handlers: catalog entries, schemas and validation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, Field

from domains.sdk import Classification, Domain, TaskContext, define_capability
from gateway.errors import InvalidRequest


class ScoreRequest(BaseModel):
    customer: str
    amount: float = Field(gt=0)


class ScoreResult(BaseModel):
    score: float
    reasons: list[str] = []


async def score(ctx: TaskContext, req: ScoreRequest) -> ScoreResult:
    """Scores a transaction.

    Longer explanation that must not reach the catalog.
    """
    return ScoreResult(score=req.amount / 1000)


def test_decorator_builds_catalog_entry_from_models_and_metadata() -> None:
    domain = Domain(name="risk", owner="risk-team")

    decorated = domain.capability(
        "score",
        version="2.1.0",
        idempotent=True,
        timeout=5.0,
        accepts=[Classification.INTERNAL],
        returns=[Classification.INTERNAL, Classification.CONFIDENTIAL],
        description="Scores risk",
    )(score)

    assert decorated is score  # handlers stay directly callable
    (spec,) = domain.catalog()
    assert spec.name == "score"
    assert spec.version == "2.1.0"
    assert spec.description == "Scores risk"
    assert spec.idempotent is True
    assert spec.default_timeout == timedelta(seconds=5)
    assert spec.accepts == (Classification.INTERNAL,)
    assert spec.returns == (Classification.INTERNAL, Classification.CONFIDENTIAL)
    assert spec.input_schema == ScoreRequest.model_json_schema()
    assert spec.output_schema == ScoreResult.model_json_schema(mode="serialization")
    assert spec.input_schema["required"] == ["customer", "amount"]
    assert spec.input_schema["properties"]["amount"]["exclusiveMinimum"] == 0


def test_models_come_from_annotations() -> None:
    capability = define_capability(score, name="score")

    assert capability.input_model is ScoreRequest
    assert capability.output_model is ScoreResult
    assert capability.handler is score
    assert capability.timeout == 30.0


def test_description_defaults_to_first_docstring_line() -> None:
    assert define_capability(score, name="score").spec.description == "Scores a transaction."


def test_defaults() -> None:
    spec = define_capability(score, name="score").spec

    assert (spec.version, spec.idempotent, spec.accepts, spec.returns) == ("1.0.0", False, (), ())


@pytest.mark.parametrize("name", ["Score", "s", "1score", "score_x", "", "a" * 64])
def test_invalid_capability_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid capability name"):
        define_capability(score, name=name)


@pytest.mark.parametrize("name", ["Risk", "r", "risk team"])
def test_invalid_domain_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid domain name"):
        Domain(name=name, owner="x")


def test_sync_handler_is_rejected() -> None:
    def sync(ctx: TaskContext, req: ScoreRequest) -> ScoreResult:
        return ScoreResult(score=0)

    with pytest.raises(TypeError, match="async function"):
        define_capability(sync, name="score")  # type: ignore[arg-type]


def test_handler_without_model_annotations_is_rejected() -> None:
    async def untyped(ctx: TaskContext, req: dict[str, Any]) -> ScoreResult:
        return ScoreResult(score=0)

    async def no_return(ctx: TaskContext, req: ScoreRequest):  # type: ignore[no-untyped-def]
        return ScoreResult(score=0)

    with pytest.raises(TypeError, match="request parameter must be annotated"):
        define_capability(untyped, name="score")
    with pytest.raises(TypeError, match="return must be annotated"):
        define_capability(no_return, name="score")


def test_handler_with_wrong_arity_is_rejected() -> None:
    async def one(req: ScoreRequest) -> ScoreResult:
        return ScoreResult(score=0)

    with pytest.raises(TypeError, match="exactly"):
        define_capability(one, name="score")  # type: ignore[arg-type]


def test_unresolvable_annotations_get_a_clear_error() -> None:
    async def handler(ctx: TaskContext, req: Missing) -> ScoreResult:  # type: ignore[name-defined]  # noqa: F821
        return ScoreResult(score=0)

    with pytest.raises(TypeError, match="cannot resolve"):
        define_capability(handler, name="score")


@pytest.mark.parametrize(("version", "timeout"), [("", 1.0), ("1.0.0", 0.0), ("1.0.0", -1.0)])
def test_empty_version_and_non_positive_timeout_are_rejected(version: str, timeout: float) -> None:
    with pytest.raises(ValueError, match=r"version|timeout"):
        define_capability(score, name="score", version=version, timeout=timeout)


def test_duplicate_names_are_rejected() -> None:
    domain = Domain(name="risk", owner="risk-team")
    domain.capability("score")(score)

    with pytest.raises(ValueError, match="already has"):
        domain.capability("score", version="2.0.0")(score)


def test_lookup_by_name_and_version() -> None:
    domain = Domain(name="risk", owner="risk-team")
    domain.capability("score", version="1.2.0")(score)
    domain.capability("limits")(score)

    assert [c.name for c in domain.capabilities] == ["score", "limits"]
    assert domain.get("score") is domain.capabilities[0]
    assert domain.get("score", "1.2.0") is domain.capabilities[0]
    assert domain.get("score", "1.0.0") is None
    assert domain.get("unknown") is None
