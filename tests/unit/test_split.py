"""The picture of a canary split (jupyter_mldeploy.split) and the CanarySlider keeping it live from
Deployment watch events; pure, no cluster (the same picture against the sandbox is in
tests/integration/test_rollout_magics.py and in a real JupyterLab in tests/ui/)."""

from __future__ import annotations

import re

from jupyter_mldeploy.split import Split, TrackPods, Weights, pods_from_deployment

W = Weights(70.0, 30.0, "gateway")


def test_the_text_bar_has_both_shares_versions_and_pods():
    s = Split("fraud", W, "1.0", "2.0", TrackPods(2, 2), TrackPods(1, 1))
    assert s.text() == ("fraud: stable 70% / canary 30% via gateway\n"
                        f"  [{'#' * 28}{'+' * 12}]\n"
                        "  # stable 1.0          70%  2/2 ready\n"
                        "  + canary 2.0          30%  1/1 ready")


def test_the_bar_is_as_wide_as_asked_at_every_share():
    for canary in (0, 1, 12.5, 50, 99, 100):
        text = Split("m", Weights(100 - canary, canary, "istio")).text(width=20)
        bar = re.search(r"\[([#+]*)\]", text)[1]
        assert len(bar) == 20 and bar.count("#") == round(20 * (100 - canary) / 100)


def test_the_html_bar_has_one_segment_per_share_sized_by_it():
    s = Split("fraud", W, "1.0", "2.0", TrackPods(2, 2), TrackPods(0, 1))
    html = s.html()
    assert 'class="mldeploy-split-stable"' in html and "width:70.00%" in html
    assert 'class="mldeploy-split-canary"' in html and "width:30.00%" in html
    assert "<code>2.0</code> 30%, 0/1 ready" in html and "<code>1.0</code> 70%, 2/2 ready" in html
    # a share of 0 draws no segment, and the legend still names the track
    none = Split("fraud", Weights(100.0, 0.0, "istio"), "1.0", "2.0").html()
    assert "mldeploy-split-canary" not in none and "<b>canary</b>" in none


def test_everything_in_the_picture_is_escaped():
    s = Split("fraud", Weights(50.0, 50.0, "replicas", "<b>4</b> & more"), "<img>", "2.0")
    assert "<img>" not in s.html() and "&lt;img&gt;" in s.html() and "&lt;b&gt;4&lt;/b&gt; &amp;" in s.html()


def test_pods_from_a_deployment():
    assert pods_from_deployment(None) == TrackPods(0, 0)
    dep = {"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}
    assert pods_from_deployment(dep) == TrackPods(2, 3) and str(TrackPods(2, 3)) == "2/3 ready"


def _slider(**kw):
    from jupyter_mldeploy.widgets.canary import CanarySlider

    from .test_canary_widget import FakeRollout

    fake = FakeRollout(weight=30, ready=0)
    pods = {"stable": TrackPods(2, 2), "canary": TrackPods(0, 1)}
    return CanarySlider("fraud", pods_fn=lambda _n, **_kw: dict(pods), **fake.kw(**kw)), fake


def _deployment(name: str, ready: int, replicas: int) -> dict:
    return {"kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas}, "status": {"readyReplicas": ready}}


def test_the_slider_draws_the_picture_and_keeps_it_live_from_watch_events():
    s, _fake = _slider()
    assert "0/1 ready" in s.split.value and s.slider.disabled and not s.ready
    assert str(s).endswith("+ canary 2.0          30%  0/1 ready")
    # the canary's pod turns ready: the picture and the slider follow, with no read
    s._on_watch([("MODIFIED", _deployment("fraud-canary", 1, 1), None),
                 ("MODIFIED", _deployment("other-model", 0, 9), None),
                 ("ADDED", {"kind": "Pod", "metadata": {"name": "fraud-canary-x"}}, None)])
    assert s.pods["canary"] == TrackPods(1, 1) and s.ready and not s.slider.disabled
    assert "<code>2.0</code> 30%, 1/1 ready" in s.split.value and "other-model" not in s.split.value
    # the canary goes away (rolled back elsewhere): 0/0 and the slider is disabled again
    s._on_watch([("DELETED", _deployment("fraud-canary", 1, 1), None)])
    assert s.pods["canary"] == TrackPods(0, 0) and not s.ready and s.slider.disabled


def test_without_a_loop_the_slider_subscribes_to_no_watch():
    s, _fake = _slider(watch=True)
    assert not s.live and s._watches is None
