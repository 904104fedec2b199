"""`fedgate policy ...`: check, explain and administer the shared policy.

`check` and `explain` ask the gateway's PolicyAdmin service (the live policy) by
default; `--offline` decides with the `policies/` files (or `--policies DIR`), and
`--database-url` with the rules stored in a gateway database, without a gateway.
`list`, `add`, `remove`, `import`, `export` and `changes` go through the gateway,
which authorizes them (`policy.admin`) and records who made each change.

Exit codes: 0 success (for check/explain: allowed), 3 denied by the policy
(check/explain), 1 the gateway refused or failed, 2 bad usage or input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.markup import escape

from domains.sdk import GatewayClient
from domains.sdk.gateway_client import translate_rpc_errors
from federation.v1 import policy_pb2 as pol
from federation.v1 import policy_pb2_grpc as pol_grpc
from gateway.cli.client_commands import (
    CALLER_OPTION,
    CERTS_OPTION,
    GATEWAY_OPTION,
    INSECURE_OPTION,
    run_client,
)
from gateway.cli.output import console, fail, print_json, print_table
from gateway.core.decision import Action
from gateway.core.policy import (
    CasbinPolicy,
    Explanation,
    PolicyRule,
    make_rule,
    parse_rule,
    parse_rules,
    principal_of,
)
from gateway.errors import GatewayError
from gateway.settings import PolicySettings

T = TypeVar("T")

EXIT_DENIED = 3
"""Exit code of `check`/`explain` when the policy denies the request."""

policy_app = typer.Typer(
    help="Check, explain and administer the shared policy (docs/policies.md).",
    no_args_is_help=True,
)


class Format(StrEnum):
    """Output formats."""

    table = "table"
    json = "json"


FORMAT_OPTION = typer.Option(Format.table, "--format", "-f", help="table or json.")
OFFLINE_OPTION = typer.Option(
    False, "--offline", help="Decide with the policy files, not the gateway's live policy."
)
POLICIES_OPTION = typer.Option(
    None, "--policies", help="Folder with model.conf and *.csv for --offline (default policies/)."
)
DATABASE_OPTION = typer.Option(
    None,
    "--database-url",
    envvar="FEDGATE_DATABASE_URL",
    help="Decide with the rules stored in this gateway database (no gateway needed).",
)


@dataclass(frozen=True)
class Gateway:
    """How to reach the gateway and whom to call as (the CLI's client options)."""

    address: str
    caller: str
    certs: Path
    insecure: bool


def _admin(gateway: Gateway, work: Callable[[pol_grpc.PolicyAdminAsyncStub], Awaitable[T]]) -> T:
    """Runs `work` with a PolicyAdmin stub on the CLI's gateway channel; errors exit 1/2."""

    async def with_stub(client: GatewayClient) -> T:
        stub: pol_grpc.PolicyAdminAsyncStub = pol_grpc.PolicyAdminStub(client.channel)
        with translate_rpc_errors():
            return await work(stub)

    return run_client(
        gateway.address,
        gateway.caller,
        with_stub,
        certs=gateway.certs,
        insecure=gateway.insecure,
    )


def _rule_from_args(tokens: list[str]) -> PolicyRule:
    """A rule given as `p, a, b, c, d` (one argument) or as separate words."""
    try:
        if len(tokens) == 1:
            return parse_rule(tokens[0])
        if not tokens:
            raise GatewayError("give a rule, for example: p cli finance issue-refund invoke")
        return make_rule(tokens[0], tokens[1:])
    except GatewayError as exc:
        fail(exc.message, 2)


def _action(text: str) -> Action:
    try:
        return Action(text)
    except ValueError:
        fail(f"unknown action {text!r}: expected one of {', '.join(a.value for a in Action)}", 2)


def _local_policy(policies: Path | None, database_url: str | None) -> CasbinPolicy:
    settings = (
        PolicySettings()
        if policies is None
        else PolicySettings(model=policies / "model.conf", seed_dir=policies)
    )
    try:
        model = settings.model.read_text()
        if database_url:
            from gateway.store.database import open_engine
            from gateway.store.policy_store import SqlPolicyStore

            engine = open_engine(database_url)
            try:
                stored = SqlPolicyStore(engine).load()
            finally:
                engine.dispose()
            return CasbinPolicy(model, stored.rules, version=stored.version, cache_size=0)
        rules: list[PolicyRule] = []
        for path in settings.seed_files:
            rules.extend(parse_rules(path.read_text(), source=str(path)))
        return CasbinPolicy(model, rules, cache_size=0)
    except OSError as exc:
        fail(f"cannot read the policy: {exc.strerror}: {exc.filename}", 2)
    except GatewayError as exc:
        fail(exc.message, 2 if "unavailable" not in exc.message else 1)


def _decide(
    subject: str,
    domain: str,
    obj: str,
    action: str,
    *,
    explain: bool,
    gateway: Gateway,
    offline: bool,
    policies: Path | None,
    database_url: str | None,
) -> pol.CheckResponse:
    act = _action(action)
    try:
        make_rule("p", [subject, domain, obj, act.value])
    except GatewayError as exc:
        fail(exc.message, 2)
    if offline or database_url:
        policy = _local_policy(policies, database_url if not offline else None)
        principal = principal_of(subject)
        if explain:
            return _explanation_to_proto(policy.explain(principal, domain, obj, act))
        decision = policy.decide(principal, domain, obj, act)
        return pol.CheckResponse(
            allowed=decision.allowed,
            reason=decision.reason,
            rule=decision.rule,
            version=decision.policy_version,
        )
    request = pol.CheckRequest(subject=subject, domain=domain, object=obj, action=act.value)
    return _admin(gateway, lambda stub: stub.Explain(request) if explain else stub.Check(request))


def _explanation_to_proto(explanation: Explanation) -> pol.CheckResponse:
    decision = explanation.decision
    return pol.CheckResponse(
        allowed=decision.allowed,
        reason=decision.reason,
        rule=decision.rule,
        version=decision.policy_version,
        matching_rules=[
            pol.PolicyRule(ptype=r.ptype, values=r.values) for r in explanation.matching_rules
        ],
        subjects=explanation.subjects,
        roles=explanation.roles,
    )


def _rule_text(rule: pol.PolicyRule) -> str:
    return ", ".join((rule.ptype, *rule.values))


def _print_decision(reply: pol.CheckResponse, fmt: Format, *, explain: bool) -> None:
    if fmt is Format.json:
        value: dict[str, Any] = {
            "allowed": reply.allowed,
            "reason": reply.reason,
            "rule": reply.rule,
            "version": reply.version,
        }
        if explain:
            value["matching_rules"] = [_rule_text(r) for r in reply.matching_rules]
            value["subjects"] = list(reply.subjects)
            value["roles"] = list(reply.roles)
        print_json(value)
    else:
        verdict = "[green]allowed[/]" if reply.allowed else "[red]denied[/]"
        console.print(f"{verdict}  {escape(reply.reason)}", highlight=False)
        console.print(f"  rule: {escape(reply.rule)}   policy version {reply.version}")
        if explain:
            console.print(f"  asked as: {escape(', '.join(reply.subjects))}")
            console.print(f"  roles: {escape(', '.join(reply.roles) or '(none)')}")
            for rule in reply.matching_rules:
                console.print(f"  matches: {escape(_rule_text(rule))}", highlight=False)
    raise typer.Exit(0 if reply.allowed else EXIT_DENIED)


SUBJECT_ARG = typer.Argument(..., help="Principal: a domain or DOMAIN/agent/NAME.")
DOMAIN_ARG = typer.Argument(..., help="Target domain, or * (federation-wide).")
OBJECT_ARG = typer.Argument(..., help="Capability, context key, or * for whole-domain actions.")
ACTION_ARG = typer.Argument(..., help="One of: " + ", ".join(a.value for a in Action) + ".")


@policy_app.command("check")
def check_command(
    subject: str = SUBJECT_ARG,
    domain: str = DOMAIN_ARG,
    obj: str = OBJECT_ARG,
    action: str = ACTION_ARG,
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    offline: bool = OFFLINE_OPTION,
    policies: Path | None = POLICIES_OPTION,
    database_url: str | None = DATABASE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Decide one request: exit 0 if allowed, 3 if denied (the reason names what is missing)."""
    reply = _decide(
        subject,
        domain,
        obj,
        action,
        explain=False,
        gateway=Gateway(gateway, caller, certs, insecure),
        offline=offline,
        policies=policies,
        database_url=database_url,
    )
    _print_decision(reply, fmt, explain=False)


@policy_app.command("explain")
def explain_command(
    subject: str = SUBJECT_ARG,
    domain: str = DOMAIN_ARG,
    obj: str = OBJECT_ARG,
    action: str = ACTION_ARG,
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    offline: bool = OFFLINE_OPTION,
    policies: Path | None = POLICIES_OPTION,
    database_url: str | None = DATABASE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Decide one request and show why: every matching rule, the subjects asked, their roles."""
    reply = _decide(
        subject,
        domain,
        obj,
        action,
        explain=True,
        gateway=Gateway(gateway, caller, certs, insecure),
        offline=offline,
        policies=policies,
        database_url=database_url,
    )
    _print_decision(reply, fmt, explain=True)


@policy_app.command("list")
def list_command(
    domain: str = typer.Option("", "--domain", "-d", help="Only rules about this domain."),
    ptype: str = typer.Option("", "--type", "-t", help="Only rules of this type: p, g, flow."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the stored rules (needs policy.admin on the domain, or on * for all)."""
    request = pol.ListPoliciesRequest(domain=domain, ptype=ptype)
    reply = _admin(
        Gateway(gateway, caller, certs, insecure), lambda stub: stub.ListPolicies(request)
    )
    if fmt is Format.json:
        print_json({"version": reply.version, "rules": [_rule_text(r) for r in reply.rules]})
        return
    print_table(
        f"policy version {reply.version} ({len(reply.rules)} rules)",
        ["type", "values"],
        [(r.ptype, ", ".join(r.values)) for r in reply.rules],
    )


def _print_change(change: pol.PolicyChange, fmt: Format) -> None:
    if fmt is Format.json:
        print_json(
            {
                "version": change.version,
                "changed": change.changed,
                "actor": change.actor,
                "kind": change.kind,
                "added": [_rule_text(r) for r in change.added],
                "removed": [_rule_text(r) for r in change.removed],
            }
        )
        return
    if not change.changed:
        console.print(f"nothing changed (policy version {change.version})")
        return
    console.print(
        f"policy version {change.version}: {change.kind} by {escape(change.actor)}, "
        f"{len(change.added)} added, {len(change.removed)} removed"
    )


@policy_app.command("add")
def add_command(
    rule: list[str] = typer.Argument(..., help="The rule: 'p, cli, risk, score, invoke' or words."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Add one rule (needs policy.admin on the rule's domain)."""
    parsed = _rule_from_args(rule)
    request = pol.ChangePolicyRequest(
        rules=[pol.PolicyRule(ptype=parsed.ptype, values=parsed.values)]
    )
    _print_change(
        _admin(Gateway(gateway, caller, certs, insecure), lambda stub: stub.AddPolicy(request)), fmt
    )


@policy_app.command("remove")
def remove_command(
    rule: list[str] = typer.Argument(..., help="The rule: 'p, cli, risk, score, invoke' or words."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Remove one rule (needs policy.admin on the rule's domain)."""
    parsed = _rule_from_args(rule)
    request = pol.ChangePolicyRequest(
        rules=[pol.PolicyRule(ptype=parsed.ptype, values=parsed.values)]
    )
    _print_change(
        _admin(Gateway(gateway, caller, certs, insecure), lambda stub: stub.RemovePolicy(request)),
        fmt,
    )


@policy_app.command("import")
def import_command(
    file: str = typer.Argument(..., help="Policy file (policies/*.csv format), or - for stdin."),
    replace: bool = typer.Option(
        False, "--replace", help="Make the stored rules exactly the file's (needs admin on *)."
    ),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Import a policy file: add its missing rules, or --replace everything (one version)."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as exc:
        fail(f"cannot read {file!r}: {exc.strerror}", 2)
    try:
        parse_rules(text, source=file)  # a clear local error before anything is sent
    except GatewayError as exc:
        fail(exc.message, 2)
    request = pol.ImportPoliciesRequest(text=text, replace=replace)
    _print_change(
        _admin(
            Gateway(gateway, caller, certs, insecure), lambda stub: stub.ImportPolicies(request)
        ),
        fmt,
    )


@policy_app.command("export")
def export_command(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
) -> None:
    """Export every stored rule as a policy file (needs policy.admin on *)."""
    reply = _admin(
        Gateway(gateway, caller, certs, insecure),
        lambda stub: stub.ExportPolicies(pol.ExportPoliciesRequest()),
    )
    text = f"# fedgate shared policy, version {reply.version}\n{reply.text}"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}", 2)
    console.print(f"policy version {reply.version} written to {output}")


@policy_app.command("changes")
def changes_command(
    since: int = typer.Option(0, "--since", help="Only changes after this version."),
    limit: int = typer.Option(100, "--limit", help="Most changes to show (at most 1000)."),
    gateway: str = GATEWAY_OPTION,
    caller: str = CALLER_OPTION,
    certs: Path = CERTS_OPTION,
    insecure: bool = INSECURE_OPTION,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Show the change log: version, who, what, when (needs policy.admin on *)."""
    request = pol.ListChangesRequest(since_version=since, limit=limit)
    reply = _admin(
        Gateway(gateway, caller, certs, insecure), lambda stub: stub.ListChanges(request)
    )
    if fmt is Format.json:
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "version": c.version,
                        "actor": c.actor,
                        "kind": c.kind,
                        "added": [_rule_text(r) for r in c.added],
                        "removed": [_rule_text(r) for r in c.removed],
                        "changed_at": c.changed_at.ToDatetime().isoformat(),
                    }
                    for c in reply.changes
                ],
                indent=2,
            )
            + "\n"
        )
        return
    print_table(
        "policy changes",
        ["version", "when", "who", "kind", "added", "removed"],
        [
            (
                c.version,
                c.changed_at.ToDatetime().isoformat(timespec="seconds"),
                c.actor,
                c.kind,
                len(c.added),
                len(c.removed),
            )
            for c in reply.changes
        ],
    )
