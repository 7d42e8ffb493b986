"""Generate the Python modules for every .proto under components/lokistack/proto.

``make proto`` runs this; ``tests/unit/proto/test_generated.py`` runs it into a temporary
directory and fails when the committed modules differ, so a .proto edit cannot land without its
generated code. Output per ``x.proto``: ``x_pb2.py`` (messages, upb-backed), ``x_pb2.pyi`` and
``x_pb2_grpc.pyi`` (typed stubs from mypy-protobuf, so ``mypy --strict`` sees real types) and
``x_pb2_grpc.py`` for files that declare services.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE_ROOT = ROOT / "components"
PROTO_PACKAGE = SOURCE_ROOT / "lokistack" / "proto"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[pathlib.Path]:
    return sorted(PROTO_PACKAGE.glob("*.proto"))


def generated_files(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(path for path in directory.iterdir() if path.name.endswith(GENERATED_SUFFIXES))


def generate(output_root: pathlib.Path) -> list[pathlib.Path]:
    """Generate into ``output_root`` (laid out like components/); returns the files written."""
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    plugin_dir = pathlib.Path(sys.executable).parent
    sources = [str(path.relative_to(SOURCE_ROOT)) for path in proto_files()]
    args = [
        "protoc",
        f"-I{SOURCE_ROOT}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        f"--mypy_out={output_root}",
        f"--mypy_grpc_out={output_root}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    out_package = output_root / PROTO_PACKAGE.relative_to(SOURCE_ROOT)
    # grpc_tools writes an (empty) _grpc module even for files without services; drop those.
    for path in generated_files(out_package):
        if path.name.endswith("_pb2_grpc.py") and "class " not in path.read_text():
            path.unlink()
            path.with_suffix(".pyi").unlink(missing_ok=True)
    return generated_files(out_package)


def main() -> int:
    argparse.ArgumentParser(prog="python tools/protogen.py", description=__doc__).parse_args()
    for stale in generated_files(PROTO_PACKAGE):
        stale.unlink()
    staging = ROOT / "build" / "protogen"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / PROTO_PACKAGE.relative_to(SOURCE_ROOT)).mkdir(parents=True)
    for path in generate(staging):
        shutil.copyfile(path, PROTO_PACKAGE / path.name)
        print(f"protogen: {(PROTO_PACKAGE / path.name).relative_to(ROOT)}")
    shutil.rmtree(staging)
    return 0


if __name__ == "__main__":
    sys.exit(main())
