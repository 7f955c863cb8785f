"""`compare()`: replay a sample to the primary and the shadow model at once and compare the answers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from ..errors import SpecError
from ..labels import track_name
from ..spec import validate_model_name, validate_namespace
from .comparison import Mode, check_mode
from .report import Row, ShadowReport, build_report
from .transports import ProxySide, Side, UrlSide, preflight
from .wire import Protocol, RowError, as_rows

if TYPE_CHECKING:
    from ..kube.client import Kube

SHADOW_SUFFIX = track_name("", "shadow")  # kept for importers; names come from track_name


def compare(name: str | None = None, data: Any = None, *, primary_url: str | None = None,
            shadow_url: str | None = None, namespace: str | None = None, kube: Kube | None = None,
            kubeconfig: str | None = None, context: str | None = None,
            model: str | None = None, via: Literal["proxy", "urls"] | None = None, tolerance: float = 1e-6,
            mode: Mode = "auto", k: int = 5, concurrency: int = 8, timeout: float = 10.0,
            output: str | None = None, protocol: Literal["v2", "predict"] = "v2") -> ShadowReport:
    """Send every row of `data` to the primary and the shadow model at once; compare the answers.

    name: the model's deployment name: Services `<name>` (primary) and `<name>-shadow` (shadow), and the
        model name in `/v2/models/{model}/infer` unless `model` is given.
    data: a list of rows, a NumPy array (one row per first index) or a pandas DataFrame (one input tensor
        per column, which the server sees as one dict per row).
    via: "urls" (`primary_url` and `shadow_url`: base URLs of Open Inference Protocol servers) or
        "proxy" (the API server's service proxy in `namespace`, with `kube` or the default connection).
        Default: "urls" when URLs are given, else "proxy".
    mode: "exact", "numeric" (|p - s| <= tolerance), "label" (argmax or the label itself), "topk" (the k
        best indices of score vectors are the same set), or "auto" (see `choose_mode`).
    output: which output tensor to compare (default: the first one of each answer).
    protocol: "v2" (`POST /v2/models/{model}/infer`, readiness `GET /v2/models/{model}/ready`) or
        "predict" for images that only have `POST /predict` ({"instances": [row]}) and `GET /healthz`;
        with "predict" the request id travels only in the x-request-id header (URLs), not via the proxy.
    concurrency: rows in flight at once; both sides of a row are sent at the same time. Each request
        waits at most `timeout` seconds.

    A side that cannot answer at all (no ready pod, no Service, nothing listening) raises MLDeployError
    with one sentence before any row is sent; a row one side fails is counted in the report.
    """
    rows = as_rows(data)
    check_mode(mode)
    if not (isinstance(concurrency, int) and concurrency >= 1):
        raise SpecError(f"concurrency must be a positive integer, not {concurrency!r}.")
    if not timeout or timeout <= 0:
        raise SpecError(f"timeout must be a positive number of seconds, not {timeout!r}.")
    if tolerance < 0:
        raise SpecError(f"tolerance must not be negative, not {tolerance!r}.")
    if not (isinstance(k, int) and k >= 1):
        raise SpecError(f"k must be a positive integer, not {k!r}.")
    if protocol not in ("v2", "predict"):
        raise SpecError(f"protocol must be 'v2' or 'predict', not {protocol!r}.")
    if protocol == "predict" and output is not None:
        raise SpecError("output= picks an Open Inference Protocol output tensor; /predict has only "
                        "predictions.")
    if via is None:
        via = "urls" if (primary_url or shadow_url) else "proxy"
    model_name = model or name
    sides: list[Side]
    pool = None
    if via == "urls":
        if not (primary_url and shadow_url):
            raise SpecError("via='urls' needs both primary_url and shadow_url.")
        if not model_name and protocol == "v2":
            raise SpecError("Say which model to ask: name= or model= (the {model} in /v2/models/{model}).")
        import urllib3

        pool = urllib3.PoolManager(num_pools=4, maxsize=concurrency, block=False)
        proto = Protocol(protocol, model_name or "", output)
        sides = [UrlSide("primary", primary_url, proto, pool, timeout),
                 UrlSide("shadow", shadow_url, proto, pool, timeout)]
    elif via == "proxy":
        if not name:
            raise SpecError("via='proxy' needs the model's name (its Services are <name> and <name>-shadow).")
        # Both go into the service proxy's path: a bad one is one sentence here, before any request.
        validate_model_name(name)
        from ..connection import cluster

        kube = cluster(kube, kubeconfig, context)
        ns = validate_namespace(namespace or kube.namespace)
        proto = Protocol(protocol, model_name or name, output)
        sides = [ProxySide("primary", kube, ns, name, proto, timeout),
                 ProxySide("shadow", kube, ns, track_name(name, "shadow"), proto, timeout)]
    else:
        raise SpecError(f"via must be 'proxy' or 'urls', not {via!r}.")

    try:
        preflight(sides, name or model_name or "")
        results, wall = _replay(rows, sides, concurrency, proto)
    finally:
        if pool is not None:
            pool.clear()
    return build_report(name or model_name, "replay", results, mode=mode, tolerance=tolerance, k=k,
                         primary=sides[0].where, shadow=sides[1].where,
                         latency_source="round trip from here", wall_s=wall)


def _replay(rows: list, sides: Sequence[Side], concurrency: int,
            proto: Protocol) -> tuple[list[Row], float]:
    run = uuid.uuid4().hex[:12]
    results = [Row(request_id=f"{run}-{i:05d}", input=row) for i, row in enumerate(rows)]
    stop = threading.Event()

    def call(side: Side, body: dict, rid: str) -> tuple[Any, float, str | None]:
        started = time.perf_counter()
        try:
            value = proto.answer(side.infer(body, rid))
            error = None
        except RowError as e:
            value, error = None, str(e)
        return value, (time.perf_counter() - started) * 1000, error

    def one(i: int) -> None:
        if stop.is_set():
            return
        r = results[i]
        body = proto.body(r.input, r.request_id)
        primary = side_pool.submit(call, sides[0], body, r.request_id)
        r.shadow, r.shadow_ms, r.shadow_error = call(sides[1], body, r.request_id)
        r.primary, r.primary_ms, r.primary_error = primary.result()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="shadow-primary") as side_pool, \
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="shadow-row") as row_pool:
        futures = [row_pool.submit(one, i) for i in range(len(rows))]
        try:
            for f in futures:
                f.result()
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            raise
    return results, time.perf_counter() - started
