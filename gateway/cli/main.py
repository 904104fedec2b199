"""`fedgate`: the federation gateway's command line."""

from __future__ import annotations

import typer

from gateway.cli.audit_commands import audit_app
from gateway.cli.certs import certs_app
from gateway.cli.client_commands import call_command, domains_app
from gateway.cli.context_commands import context_app
from gateway.cli.demo import demo_command
from gateway.cli.lineage_command import lineage_command
from gateway.cli.policy_commands import policy_app
from gateway.cli.serve import serve_command
from gateway.cli.task_commands import task_app

app = typer.Typer(
    name="fedgate",
    help="Federation gateway for AI agent domains: serve, inspect domains, call capabilities.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve_command)
app.command("call")(call_command)
app.command("demo")(demo_command)
app.add_typer(domains_app, name="domains")
app.add_typer(policy_app, name="policy")
app.add_typer(certs_app, name="certs")
app.add_typer(audit_app, name="audit")
app.add_typer(context_app, name="context")
audit_app.command("lineage")(lineage_command)
app.add_typer(task_app, name="task")


if __name__ == "__main__":
    app()
