"""The Python protobuf module generated from proto/glide.proto (by grpcio-tools' protoc) for the tests."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from google.protobuf import json_format, struct_pb2

PROTO_DIR = Path(__file__).resolve().parent.parent / "proto"


def generate(out_dir: Path) -> ModuleType:
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={out_dir}", "glide.proto"])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, str(out_dir))
    try:
        return importlib.import_module("glide_pb2")
    finally:
        sys.path.remove(str(out_dir))


def to_bytes(pb: ModuleType, action: str, data: Any = None, **fields: Any) -> bytes:
    env = pb.Envelope(action=action, **fields)
    if data is not None:
        value = struct_pb2.Value()
        json_format.Parse(json.dumps(data), value)
        env.data.CopyFrom(value)
    return bytes(env.SerializeToString())


def from_bytes(pb: ModuleType, raw: bytes) -> dict[str, Any]:
    env = pb.Envelope()
    env.ParseFromString(raw)
    out = json_format.MessageToDict(env, preserving_proto_field_name=True)
    if "seq" in out:
        out["seq"] = int(out["seq"])
    if "ver" in out:
        out["ver"] = int(out["ver"])
    if "data" in out:
        out["data"] = _integral(out["data"])
    return out


def _integral(value: Any) -> Any:
    """google.protobuf.Value numbers are doubles: give integral ones back as ints, as a typed client would."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value
