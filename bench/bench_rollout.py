"""Rollout benchmarks against the sandbox, figures from one run.

    python bench/bench_rollout.py

- set_weight (Istio VirtualService) vs one single server-side apply of that same object;
- promote: how many rounds of writes it takes (a round = writes in flight together), counted by
  recording every write request's start time. The order is the point: the candidate is removed only
  after the route switch was accepted, so those are separate rounds by design.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
import uuid

from measure import RecordingKube  # beside this script

import jupyter_mldeploy as mld
from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.kube import apply as kapply
from jupyter_mldeploy.sandbox.control_plane import ADMIN_CONTEXT, Sandbox
from jupyter_mldeploy.spec import DeploySpec

WRITES = ("PATCH", "POST", "PUT", "DELETE")


def rounds(writes: list[tuple[float, str, str]], gap: float = 0.05) -> list[list[str]]:
    out: list[list[str]] = []
    last = None
    for t, method, path in sorted(writes):
        if last is None or t - last > gap:
            out.append([])
        out[-1].append(f"{method} {path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}")
        last = t
    return out


def main() -> int:
    info = Sandbox().up(progress=lambda m: print(m, file=sys.stderr))
    kube = RecordingKube(info["kubeconfig"], ADMIN_CONTEXT)
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    time.sleep(1)
    try:
        spec = DeploySpec.from_dict({"name": "fraud", "image": "ghcr.io/acme/fraud:1.0", "replicas": 2})
        mld.deploy(spec, namespace=ns, kube=kube, timeout=120)
        r = ro.start({"name": "fraud", "image": "ghcr.io/acme/fraud:2.0"}, strategy="canary", weight=5,
                     router="istio", namespace=ns, kube=kube, timeout=120)
        # The baseline: one server-side apply of an equal object, prepared in advance. A copy under
        # another name: writing the rollout's own VirtualService behind its back would (rightly) make
        # the next set_weight refuse, as it would for another kernel's write.
        vs = copy.deepcopy(next(m for m in r.last_route if m["kind"] == "VirtualService"))
        vs["metadata"]["name"] = "fraud-baseline"
        kapply.apply_one(kube, vs)
        pairs = []
        for i in range(15):
            w = 10 + i
            t0 = time.perf_counter()
            ro.set_weight("fraud", w, namespace=ns, kube=kube)
            a = time.perf_counter() - t0
            vs["spec"]["http"][0]["route"][0]["weight"] = 100 - w
            vs["spec"]["http"][0]["route"][1]["weight"] = w
            t0 = time.perf_counter()
            kapply.apply_one(kube, vs)
            b = time.perf_counter() - t0
            pairs.append((a, b))
        ratio = statistics.median(a / b for a, b in pairs)
        kube.sent.clear()
        ro.promote("fraud", namespace=ns, kube=kube, timeout=120)
        writes = kube.sent_of(*WRITES)
        promote_rounds = rounds(writes)
        print(f"set_weight / one single apply of the route object (median of 15): {ratio:.3f}  "
              f"(target <= 1.2)")
        print(f"promote: {len(writes)} writes in {len(promote_rounds)} rounds  (in order: the claim, "
              f"the stable's roll, the route switch, the stable Service, then the candidate's removal)")
        for i, r in enumerate(promote_rounds, 1):
            print(f"  round {i}: {', '.join(r)}")
    finally:
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
