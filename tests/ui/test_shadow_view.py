"""The ShadowView in a real JupyterLab 4 in headless Chromium: two versions of the fraud model answer on
this machine (the reference server), `ShadowView` compares them, and the browser shows the summary,
the latency plot (a PNG that really decoded) and the comparison table with the disagreements first and
tinted; "only differences" filters the table. Checked on screenshots kept in test-artifacts/."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.sandbox, pytest.mark.ui]

DIFFER_TINT = (0xF8, 0xD7, 0xDA)  # shadow_view._DIFFER, the tint of a row whose answers differ
N = 60

CELLS = [
    "from jupyter_mldeploy.serving import examples, serve\n"
    "from jupyter_mldeploy.widgets import ShadowView\n"
    "primary = serve(examples.model('1.0'), name='fraud', version='1.0')\n"
    "candidate = serve(examples.model('2.1'), name='fraud', version='2.1')\n"
    f"X = examples.sample({N})",
    "v = ShadowView('fraud', data=X, primary_url=primary.url, shadow_url=candidate.url)\nv",
]


def test_shadow_view_shows_the_summary_plot_and_table(notebook, screenshot):
    from jupyter_mldeploy import shadow
    from jupyter_mldeploy.serving import examples, serve

    # the same comparison here, to know what the browser must show
    with serve(examples.model("1.0"), name="fraud") as p, serve(examples.model("2.1"), name="fraud") as c:
        expected = shadow.compare("fraud", examples.sample(N), primary_url=p.url, shadow_url=c.url)
    differ = int((expected.rows["agree"] == False).sum())  # noqa: E712 (an object column)
    assert 0 < differ < N  # 2.1 flags far too much: some rows differ, not all

    notebook.run(CELLS)
    page = notebook.page
    view = page.locator(".mldeploy-shadow-view")
    notebook.wait_for(view, "the ShadowView")
    summary = view.locator(".mldeploy-shadow-summary")
    summary.wait_for()
    assert f"{N}" in summary.inner_text() and "agree" in summary.inner_text().lower()

    img = view.locator("img")
    img.wait_for()
    size = img.evaluate("i => [i.naturalWidth, i.naturalHeight, i.complete]")
    assert size[2] and size[0] > 300 and size[1] > 150, size  # a decoded PNG, not a broken image

    rows = view.locator(".mldeploy-shadow-rows tbody tr")
    assert rows.count() == N
    differing = view.locator("tr.mldeploy-shadow-differ")
    assert differing.count() == differ
    assert rows.first.get_attribute("class") == "mldeploy-shadow-differ"  # disagreements first
    colours = screenshot(view, "shadow-view.png")
    assert any(rgb == DIFFER_TINT for _, rgb in colours), "no row is tinted as differing"

    view.get_by_text("only differences").click()
    view.locator(".mldeploy-shadow-rows tbody tr").nth(differ - 1).wait_for()
    page.wait_for_function(f"() => document.querySelectorAll('.mldeploy-shadow-rows tbody tr').length "
                           f"== {differ}")
    assert view.locator("tr.mldeploy-shadow-agree").count() == 0
    screenshot(view, "shadow-view-only-differences.png")
