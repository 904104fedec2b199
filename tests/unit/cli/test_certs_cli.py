from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.identity.credentials import Credentials

runner = CliRunner()


def test_init_issue_list(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    done = runner.invoke(app, ["certs", "init", "--dir", str(certs), "--trust-domain", "acme.test"])
    assert done.exit_code == 0, done.output
    assert "spiffe://acme.test" in done.output
    done = runner.invoke(
        app,
        ["certs", "issue", "--gateway", "--domain", "cli", "--domain", "risk", "--dir", str(certs)],
    )
    assert done.exit_code == 0, done.output
    assert "spiffe://acme.test/domain/risk" in done.output
    assert Credentials.load(certs, "gateway").identity.is_gateway
    listed = runner.invoke(app, ["certs", "list", "--dir", str(certs)])
    assert listed.exit_code == 0, listed.output
    for identity in ("spiffe://acme.test/gateway", "spiffe://acme.test/domain/cli"):
        assert identity in listed.output


def test_dir_from_environment_and_errors(tmp_path: Path) -> None:
    env = {"FEDGATE_CERTS": str(tmp_path / "env-certs")}
    assert runner.invoke(app, ["certs", "init"], env=env).exit_code == 0
    assert (tmp_path / "env-certs" / "ca.pem").exists()
    nothing = runner.invoke(app, ["certs", "issue"], env=env)
    assert nothing.exit_code == 2
    again = runner.invoke(app, ["certs", "init"], env=env)
    assert again.exit_code == 1
    assert "already holds a CA" in again.output
    bad = runner.invoke(app, ["certs", "issue", "--domain", "Bad_Name"], env=env)
    assert bad.exit_code == 1
    assert "[a-z][a-z0-9-]{1,62}" in bad.output
