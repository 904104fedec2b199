"""`python -m gateway` runs the `fedgate` command line."""

from gateway.cli.main import app

app()
