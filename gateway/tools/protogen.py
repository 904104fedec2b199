"""Generates the `federation` wire package from `protos/`.

Run as `python -m gateway.tools.protogen OUT_DIR`; `make proto` writes into the
repository root, and a test writes into a temporary directory and compares, so
checked-in generated code can never drift from the `.proto` files.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "protos"

_INIT_DOC = '"""Generated from protos/{pkg}. Do not edit; run `make proto`."""\n'


def proto_files(root: Path = PROTO_ROOT) -> list[Path]:
    """Every `.proto` file under `root`, sorted for reproducible output."""
    return sorted(root.rglob("*.proto"))


def generate(out_dir: Path, root: Path = PROTO_ROOT) -> None:
    """Writes messages, gRPC stubs and `.pyi` type stubs for every proto under `root`."""
    well_known = str(resources.files("grpc_tools") / "_proto")
    # mypy-protobuf installs its plugins next to the interpreter; name them so PATH does not matter.
    bin_dir = Path(sys.executable).parent
    files = [str(p.relative_to(root)) for p in proto_files(root)]
    args = [
        "protoc",
        f"-I{root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    for package_dir in {(out_dir / f).parent for f in files}:
        # Every directory from the output root down to the package needs an __init__.py.
        current = package_dir
        while current != out_dir:
            init = current / "__init__.py"
            if not init.exists():
                pkg = current.relative_to(out_dir).as_posix()
                init.write_text(_INIT_DOC.format(pkg=pkg))
            current = current.parent


def main() -> None:
    """CLI entry: `python -m gateway.tools.protogen OUT_DIR`."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    generate(out)


if __name__ == "__main__":
    main()
