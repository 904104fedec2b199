"""The checked-in `federation` package must equal what `make proto` generates now."""

from __future__ import annotations

from pathlib import Path

from gateway.tools.protogen import generate

REPO = Path(__file__).resolve().parents[3]


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    checked_in = {
        p.relative_to(REPO): p.read_bytes()
        for p in (REPO / "federation").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sorted(map(str, fresh)) == sorted(map(str, checked_in)), "files differ: run make proto"
    stale = [str(path) for path, content in fresh.items() if checked_in[path] != content]
    assert not stale, f"stale generated code, run `make proto`: {stale}"


def test_every_message_and_field_is_documented() -> None:
    for proto in sorted((REPO / "protos").rglob("*.proto")):
        text = proto.read_text()
        # Cheap structural check: every message/enum/field/rpc line is preceded by a comment.
        lines = text.splitlines()
        for index, line in enumerate(lines):
            stripped = line.strip()
            declares = stripped.startswith(("message ", "enum ", "rpc ", "service ")) or (
                stripped.endswith(";")
                and "=" in stripped
                and not stripped.startswith(("option", "syntax", "package", "import", "//"))
            )
            if declares:
                previous = lines[index - 1].strip()
                assert previous.startswith("//"), f"{proto.name}:{index + 1} undocumented: {line}"
