"""The real Azure Functions Python worker's loader, run here with a stand-in for its protobuf messages.

`azure-functions-runtime` (the worker library of the v2 model) declares Python 3.13 but runs on 3.11;
the Makefile and .ci/run install it pinned with ``--no-deps --ignore-requires-python`` (a requirements
file cannot carry those flags). Its indexing, the code that decides whether Azure would load the app,
needs only a few protobuf message types, which `PROTOS` stands in for with plain objects: the
worker's own checks then run unchanged (binding names against parameters, annotations against
binding types and directions, "$return" rules, one top-level FunctionApp).

- `worker_problems(functions, directory)`: what the worker's Registry refuses, one line per function;
  `devhost.indexing.check_indexing` adds the host's own checks (routes, timer schedules).
- `index_app(directory)`: the worker's whole WorkerInitRequest for an app folder, as on Azure.
  ``python -m devhost.worker APP_DIR`` runs it in a fresh interpreter and prints JSON (exit 0 when the
  worker indexes the app, 1 when it refuses it, 2 when the worker library is not installed).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func

WORKER_PACKAGE = "azure-functions-runtime==1.3.0"
INSTALL_HINT = (
    f"the Functions Python worker library is not installed: run `make worker` "
    f"(pip install --no-deps --ignore-requires-python {WORKER_PACKAGE} azurefunctions-extensions-base==1.2.0)"
)


class WorkerUnavailable(RuntimeError):
    """azure_functions_runtime cannot be imported."""


class _Message:
    """A protobuf message as the worker uses it: built from keyword fields, read back as attributes."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__})"


def _message(name: str, **enum_values: int) -> type[_Message]:
    return type(name, (_Message,), dict(enum_values))


# The enum values are the protobuf definitions' (FunctionRpc.proto): the worker compares with them.
PROTOS = SimpleNamespace(
    BindingInfo=_message("BindingInfo", **{"in": 0}, out=1, inout=2, undefined=0, string=1, binary=2, stream=3),
    StatusResult=_message("StatusResult", Failure=0, Success=1, Cancelled=2),
    RpcException=_message("RpcException"),
    RpcFunctionMetadata=_message("RpcFunctionMetadata"),
    RpcRetryOptions=_message("RpcRetryOptions"),
    WorkerMetadata=_message("WorkerMetadata"),
    WorkerInitResponse=_message("WorkerInitResponse"),
    FunctionMetadataResponse=_message("FunctionMetadataResponse"),
)


def _runtime() -> Any:
    try:
        from azure_functions_runtime import handle_event, loader
        from azure_functions_runtime.bindings.meta import load_binding_registry
        from azure_functions_runtime.functions import FunctionLoadError, Registry
    except ImportError as exc:
        raise WorkerUnavailable(INSTALL_HINT) from exc
    load_binding_registry()  # what WorkerInitRequest does first: the converters azure.functions registers
    return SimpleNamespace(
        handle_event=handle_event, loader=loader, Registry=Registry, FunctionLoadError=FunctionLoadError
    )


def worker_problems(functions: list[func.Function], directory: Path) -> list[str]:
    """What the worker's loader refuses, one message per refused function (its own wording)."""
    runtime = _runtime()
    problems = []
    for function in functions:
        try:
            runtime.loader.process_indexed_function(PROTOS, runtime.Registry(), [function], str(directory))
        except runtime.FunctionLoadError as exc:
            problems.append(str(exc))
        except Exception as exc:  # e.g. an annotation that does not resolve: the worker fails its init with it
            problems.append(f"cannot load the {function.get_function_name()} function: {exc!r}")
    return problems


def index_app(directory: Path) -> dict[str, Any]:
    """The worker's WorkerInitRequest and FunctionsMetadataRequest for the app in ``directory``."""
    runtime = _runtime()
    directory = directory.resolve()
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))  # the worker imports function_app.py by module name
    init = SimpleNamespace(capabilities={}, function_app_directory=str(directory))
    request = SimpleNamespace(
        request=SimpleNamespace(worker_init_request=init), properties={"host": None, "protos": PROTOS}
    )
    response = asyncio.run(runtime.handle_event.worker_init_request(request))
    if response.result.status != PROTOS.StatusResult.Success:
        return {"indexed": False, "error": response.result.exception.message, "functions": []}
    metadata = asyncio.run(runtime.handle_event.functions_metadata_request(request))
    functions = [
        {"name": m.name, "bindings": {name: b.type for name, b in m.bindings.items()}}
        for m in metadata.function_metadata_results or []
    ]
    return {"indexed": True, "error": None, "functions": functions}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0] if args else os.getcwd())
    try:
        result = index_app(directory)
    except WorkerUnavailable as exc:
        print(json.dumps({"indexed": False, "error": str(exc), "functions": []}))
        return 2
    print(json.dumps(result))
    return 0 if result["indexed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
