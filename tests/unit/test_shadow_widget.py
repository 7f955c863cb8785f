"""ShadowView without a browser, on reports from two real reference servers on this machine.

The comm is swapped for one that records what a frontend would receive; the comparison is the real
`shadow.compare` over HTTP to two `jupyter_mldeploy.serving` servers (models from tests/models_for_tests).
"""

from __future__ import annotations

import asyncio
import threading

import models_for_tests as models
import pytest
from widget_comm import frontend_clicks

from jupyter_mldeploy import shadow
from jupyter_mldeploy.serving import serve
from jupyter_mldeploy.widgets.shadow_view import ShadowView

ROWS = [[float(i), 1.0] for i in range(20)]  # rows 15..19 make the shadow answer 0.5 more


pytestmark = pytest.mark.usefixtures("recording_comm")


@pytest.fixture
def servers():
    """A primary and a shadow reference server, each on a free local port."""
    with serve(models.primary, name="fraud", version="1") as p, serve(models.shadow, name="fraud",
                                                                      version="2") as s:
        yield p, s


def test_summary_rows_and_plot_from_a_name(servers):
    p, s = servers
    view = ShadowView("fraud", data=ROWS, primary_url=p.url, shadow_url=s.url)
    assert view.summary.agreement_pct == 75.0 and view.comparisons == 1
    summary = view.summary_html.value
    assert "Shadow comparison of fraud (replay of 20 rows, mode numeric" in summary
    assert "75.0% (15 of 20 rows both sides answered)" in summary
    assert f"{p.url}" in summary and f"{s.url}" in summary
    rows = view.rows_html.value
    assert rows.count('class="mldeploy-shadow-differ"') == 5
    assert rows.count('class="mldeploy-shadow-agree"') == 15
    # disagreements first, their answers in bold: row 15 is 16 on the primary, 16.5 on the shadow
    first = rows.split('<tr class="')[1]
    assert first.startswith("mldeploy-shadow-differ") and "<b>16</b>" in first and "<b>16.5</b>" in first
    assert view.plot_image.value[:8] == b"\x89PNG\r\n\x1a\n" and view.plot_image.format == "png"
    assert view.rows is view.report.rows and view.plot().axes  # a ShadowReport's interface too


def test_only_differences_filters_the_rows(servers):
    p, s = servers
    report = shadow.compare("fraud", ROWS, primary_url=p.url, shadow_url=s.url)
    view = ShadowView(report, data=ROWS, primary_url=p.url, shadow_url=s.url)
    assert view.report is report and view.comparisons == 0  # a given report is shown, not redone
    view.only_differences.value = True
    assert view.rows_html.value.count("<tr class=") == 5
    same = ShadowView(shadow.compare("fraud", ROWS[:10], primary_url=p.url, shadow_url=p.url),
                      only_differences=True)
    assert "Every row agrees." in same.rows_html.value


def test_failed_rows_are_tinted_apart_with_the_error():
    with serve(models.primary, name="fraud") as p, serve(models.shadow, name="fraud") as s:
        view = ShadowView("fraud", data=[[-1.0, 1.0], [2.0, 1.0]], primary_url=p.url, shadow_url=s.url)
    rows = view.rows_html.value
    assert rows.count('class="mldeploy-shadow-failed"') == 1 and rows.count("mldeploy-shadow-agree") == 1
    assert "shadow: HTTP 500" in rows and "negative first value -1.0" in rows
    assert view.summary.shadow_errors == 1


def test_model_answers_are_escaped():
    def primary(rows):
        return ["<script>alert(1)</script>" for _ in rows]

    def shadow_model(rows):
        return ['<img src=x onerror="alert(2)">' for _ in rows]

    with serve(primary, name="m") as p, serve(shadow_model, name="m") as s:
        view = ShadowView("m", data=[1, 2], primary_url=p.url, shadow_url=s.url)
    rows = view.rows_html.value
    assert "<script>" not in rows and "<img" not in rows
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rows and "&lt;img src=x" in rows
    assert rows.count("mldeploy-shadow-differ") == 2


def test_refresh_sends_the_rows_again_and_shows_the_new_answers(servers, monkeypatch):
    p, s = servers
    view = ShadowView("fraud", data=ROWS, primary_url=p.url, shadow_url=s.url)
    assert view.summary.agreement_pct == 75.0
    monkeypatch.setattr(models, "SHADOW_OFFSET", 0.0)  # the shadow model now agrees everywhere
    frontend_clicks(view.refresh_button)
    assert view.comparisons == 2 and view.summary.agreement_pct == 100.0
    assert "100.0% (20 of 20" in view.summary_html.value
    assert "mldeploy-shadow-differ" not in view.rows_html.value


def test_a_failed_refresh_is_one_sentence_and_the_last_report_stays():
    p, s = serve(models.primary, name="fraud"), serve(models.shadow, name="fraud")
    view = ShadowView("fraud", data=ROWS, primary_url=p.url, shadow_url=s.url)
    s.stop()
    p.stop()
    view.refresh()
    assert view.error.startswith("Nothing answered at") and "\n" not in view.error
    assert view.error.endswith(".") and "#c62828" in view.message.value
    assert view.summary.agreement_pct == 75.0 and "75.0%" in view.summary_html.value


def test_refresh_needs_the_rows():
    with serve(models.primary, name="fraud") as p:
        report = shadow.compare("fraud", ROWS[:3], primary_url=p.url, shadow_url=p.url)
    view = ShadowView(report)
    assert view.refresh_button.disabled
    view.refresh()
    assert view.error == "Refresh needs the rows: build the view with data=..."
    assert view.comparisons == 0


def test_on_the_event_loop_the_comparison_runs_off_it(servers, monkeypatch):
    p, s = servers
    threads: list[str] = []
    real = shadow.compare

    def compare(*a, **kw):
        threads.append(threading.current_thread().name)
        return real(*a, **kw)

    async def main():
        report = real("fraud", ROWS, primary_url=p.url, shadow_url=s.url)
        view = ShadowView(report, data=ROWS, primary_url=p.url, shadow_url=s.url, compare_fn=compare)
        assert view.live
        touched: list[str] = []
        view.summary_html.observe(lambda _c: touched.append(threading.current_thread().name), names="value")
        monkeypatch.setattr(models, "SHADOW_OFFSET", 2.0)
        frontend_clicks(view.refresh_button)
        assert view.comparing and view.refresh_button.disabled and "comparing..." in view.message.value
        for _ in range(100):
            if not view.comparing:
                break
            await asyncio.sleep(0.05)
        return view, touched

    view, touched = asyncio.run(main())
    assert threads and threads[0].startswith("mldeploy-shadow-fraud")
    assert touched == [threading.main_thread().name]  # the widgets change on the loop's thread only
    assert view.summary.max_abs_diff == 2.0 and not view.refresh_button.disabled


def test_without_a_frontend_it_shows_the_report(servers):
    p, s = servers
    view = ShadowView("fraud", data=ROWS, primary_url=p.url, shadow_url=s.url)
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"] == str(view.report)
    assert bundle["text/plain"].startswith("Shadow comparison of fraud (replay of 20 rows")
    assert 'class="mldeploy-shadow"' in bundle["text/html"]
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == view.model_id
