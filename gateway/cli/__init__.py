"""The `fedgate` command line (typer + rich)."""
