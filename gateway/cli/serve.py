"""`fedgate serve`: runs the gateway in the foreground."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer
from pydantic import ValidationError

from gateway.cli.output import fail
from gateway.settings import Settings


def serve_command(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML config file (README, Configuration).", exists=True
    ),
    listen: str | None = typer.Option(None, help="host:port to listen on; port 0 picks one."),
    state_dir: Path | None = typer.Option(None, help="Folder for the SQLite database."),
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL; default SQLite in the state folder."
    ),
    ready_file: Path | None = typer.Option(
        None, help="Write the bound host:port to this file once serving (for scripts)."
    ),
    log_level: str = typer.Option("INFO", help="Log level: DEBUG, INFO, WARNING, ERROR."),
) -> None:
    """Run the federation gateway until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides = {
        k: v
        for k, v in {"listen": listen, "state_dir": state_dir, "database_url": database_url}.items()
        if v is not None
    }
    try:
        settings = Settings.load(config, **overrides)
    except ValidationError as exc:
        fail(f"invalid configuration: {exc}")
    from gateway.server import serve

    asyncio.run(serve(settings, ready_file=ready_file))
