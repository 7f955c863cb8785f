"""CanarySlider benchmark against the sandbox: 50 slider moves within 2 seconds, writes actually sent.

    python bench/bench_slider.py

A real canary rollout with the Istio router; the slider is built on a running asyncio loop (as in a
kernel), moved 50 times in 2 s as a dragging hand would (continuous_update), and every PATCH the Kube
client sends is counted (the issue's target: at most 3). Printed: the writes, when the last one left
after the last move, and the weight the VirtualService holds at the end.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid

from measure import RecordingKube  # beside this script

import jupyter_mldeploy as mld
from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.sandbox.control_plane import ADMIN_CONTEXT, Sandbox
from jupyter_mldeploy.spec import DeploySpec
from jupyter_mldeploy.widgets.canary import CanarySlider

MOVES, SECONDS, DEBOUNCE = 50, 2.0, 0.4


async def drag(kube: RecordingKube, ns: str) -> tuple[CanarySlider, float, int, float]:
    """Move the slider MOVES times in SECONDS; returns it, the time taken, its final value, the last move."""
    slider = CanarySlider("fraud", namespace=ns, kube=kube, debounce=DEBOUNCE)
    assert slider.live and not slider.slider.disabled, slider.message.value
    rng = random.Random(1)
    kube.sent.clear()
    start = time.perf_counter()
    value = slider.value
    last_move = start
    for i in range(MOVES):  # a hand dragging back and forth (the same random walk every run)
        value = max(0, min(100, value + rng.choice((-3, -2, -1, 1, 2, 3, 4))))
        slider.value = value
        last_move = time.perf_counter()
        await asyncio.sleep(max(0.0, start + (i + 1) * SECONDS / MOVES - time.perf_counter()))
    for _ in range(200):  # the settled write and its read-back come back through the loop
        await asyncio.sleep(0.02)
        if slider.weights is not None and round(slider.weights.canary) == value and not slider.message.value:
            break
    return slider, last_move - start, value, last_move


def main() -> int:
    info = Sandbox().up(progress=lambda m: print(m, file=sys.stderr))
    kube = RecordingKube(info["kubeconfig"], ADMIN_CONTEXT)
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    time.sleep(1)  # the namespace's default ServiceAccount
    try:
        spec = DeploySpec.from_dict({"name": "fraud", "image": "ghcr.io/acme/fraud:1.0", "replicas": 2})
        mld.deploy(spec, namespace=ns, kube=kube, timeout=120)
        ro.start(spec.with_(image=spec.image.parse("ghcr.io/acme/fraud:2.0"), replicas=1), strategy="canary",
                 weight=50, router="istio", namespace=ns, kube=kube, timeout=120)
        slider, took, final, last_move = asyncio.run(drag(kube, ns))
        vs = kube.request("GET", f"/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices/fraud")[1]
        held = {r["destination"]["subset"]: r["weight"] for r in vs["spec"]["http"][0]["route"]}
        patches = kube.sent_of("PATCH")
        after = [t - last_move for t, _, _ in patches]
        print(f"{MOVES} slider moves in {took:.2f} s (debounce {DEBOUNCE} s): {len(patches)} PATCH "
              f"request(s) sent  (target <= 3)")
        if after:
            print(f"  the last write left {after[-1]:.2f} s after the last move; writes counted by the "
                  f"slider: {slider.writes}")
        print(f"final slider value {final}%; the VirtualService holds stable {held.get('stable')}% / canary "
              f"{held.get('canary')}%  ({'matches' if held.get('canary') == final else 'DIFFERS'})")
        print(f"the slider shows: {slider.weights}")
        slider.close()
    finally:
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")
    return 0 if len(patches) <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
