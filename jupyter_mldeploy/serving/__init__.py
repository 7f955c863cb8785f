"""A small reference model server (Open Inference Protocol v2 / KServe v2) for examples and tests.

    python -m jupyter_mldeploy.serving --model MODULE:CALLABLE --name churn --version 1 --port 8080

or, in a notebook or a test, `serve(model, name="churn", version="1")` -> a `RunningServer` in a thread.
Standard library only; see `server.py` for the protocol details and the prediction log format.
"""

from __future__ import annotations

from .server import (
    ModelAdapter,
    PredictionLog,
    RunningServer,
    ServingError,
    decode_inputs,
    decode_tensor,
    encode_tensor,
    load_model,
    make_server,
    serve,
)

__all__ = [
    "ModelAdapter", "PredictionLog", "RunningServer", "ServingError", "decode_inputs", "decode_tensor",
    "encode_tensor", "load_model", "make_server", "serve",
]
