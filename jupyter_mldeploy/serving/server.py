"""A small reference model server speaking the Open Inference Protocol (KServe v2), standard library only.

It serves one model: a Python callable (rows -> predictions) or a scikit-learn-style object with
`.predict` (and `.predict_proba`, exposed as a second output `probabilities`). Every answered or failed
request is written as one JSON line, so primary and shadow answers can be joined later by request id
(see `jupyter_mldeploy.shadow.live`).

Rows and tensors: the first dimension of every input tensor is the batch. One input of shape [N, F]
gives N rows of F values; one input of shape [N] gives N scalar rows; several inputs (one per column,
each of shape [N] or [N, ...]) give N rows as dicts keyed by input name, which a `.predict` model
receives as a pandas DataFrame when pandas is installed.

No third-party import: the image needs only Python and this package. NumPy values coming back from a
model are converted with `.tolist()` / `.item()` when present.

One module per layer: tensors (constants, ServingError, the wire format), model (loading and calling
a model), log (the prediction log) and handler (HTTP). This module re-exports them, so
`jupyter_mldeploy.serving.server:echo` and every name imported from here before still work.
"""

from __future__ import annotations

from .handler import RunningServer, make_server, serve
from .handler import banner as banner
from .handler import safe_id as safe_id
from .log import PredictionLog
from .model import JOBLIB_SUFFIXES as JOBLIB_SUFFIXES
from .model import PICKLE_SUFFIXES as PICKLE_SUFFIXES
from .model import ModelAdapter, echo, load_model
from .tensors import DATATYPES as DATATYPES
from .tensors import MAX_BODY as MAX_BODY
from .tensors import SERVER_NAME as SERVER_NAME
from .tensors import SERVER_VERSION as SERVER_VERSION
from .tensors import ServingError, decode_inputs, decode_tensor, encode_tensor, to_plain
from .tensors import _stderr as _stderr

# Classes name their public home, where IPython's for_type_by_name (the magics' text views), reprs
# and pickles look for them.
for _cls in (ModelAdapter, PredictionLog, RunningServer, ServingError):
    _cls.__module__ = __name__

# The `X as X` imports keep importable what was before, beside __all__.
__all__ = [
    "ModelAdapter", "PredictionLog", "RunningServer", "ServingError", "decode_inputs", "decode_tensor",
    "echo", "encode_tensor", "load_model", "make_server", "serve", "to_plain",
]
