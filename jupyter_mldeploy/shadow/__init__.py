"""Compare a primary and a shadow model side by side.

Every traffic router throws the shadow's answers away; this package pairs them with the primary's.

- `compare()` replays a sample (rows, a NumPy array or a DataFrame) to both models at once: each row goes
  to primary and shadow concurrently, with the same request id on both sides, either to explicit URLs
  of Open Inference Protocol servers or through the Kubernetes API server's service proxy
  (`/api/v1/namespaces/{ns}/services/{svc}:80/proxy/...`) with the kubeconfig's credentials.
- `live()` joins the prediction log lines of both models (the JSON lines the reference server in
  `jupyter_mldeploy.serving` writes) by request id, for traffic a router mirrored. Lines that do not
  parse and lines with no partner are counted and shown, never dropped silently.
- `live_from_pods()` reads those lines from the pods' logs through the API server.

Both give a `ShadowReport`: a per-row DataFrame, a summary, a plain-text and an HTML view, and a plot.

One module per concern: `comparison` (modes, one pair's verdict), `report` (ShadowReport and its text),
`html` and `plot` (its other views), `cells` (how a value reads in a cell), `wire` (request bodies and
answers), `transports` (URLs or the service proxy), `replay` (`compare`), `logjoin` (`live`) and
`pod_logs` (`live_from_pods`).
"""

from __future__ import annotations

from .comparison import MODES, Mode, choose_mode, compare_values
from .html import HTML_ROW_LIMIT
from .logjoin import MAX_DEPTH, MAX_LINE_CHARS, live
from .pod_logs import LIMIT_BYTES, TAIL_LINES, live_from_pods
from .replay import SHADOW_SUFFIX, compare
from .report import TEXT_ROW_LIMIT, ShadowReport, ShadowSummary
from .transports import PROXY_CATCH_UP, SERVICE_PORT

__all__ = ["HTML_ROW_LIMIT", "LIMIT_BYTES", "MAX_DEPTH", "MAX_LINE_CHARS", "MODES", "PROXY_CATCH_UP",
           "SERVICE_PORT", "SHADOW_SUFFIX", "TAIL_LINES", "TEXT_ROW_LIMIT", "Mode", "ShadowReport",
           "ShadowSummary", "choose_mode", "compare", "compare_values", "live", "live_from_pods"]
