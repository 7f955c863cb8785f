"""The one table rule: aligned text columns and escaped HTML cells."""

from jupyter_mldeploy.views.tables import html_table, text_table


def test_text_columns_are_as_wide_as_their_widest_cell_and_lines_end_clean():
    assert text_table(("NAME", "PODS"), [("fraud-canary", "1/1"), ("x", "")]) == [
        "NAME           PODS",
        "fraud-canary   1/1",
        "x",
    ]


def test_html_cells_and_headers_are_escaped():
    out = html_table(("<b>",), [("a&b",), ("<script>",)])
    assert out == ("<table><thead><tr><th>&lt;b&gt;</th></tr></thead><tbody><tr><td>a&amp;b</td></tr>"
                   "<tr><td>&lt;script&gt;</td></tr></tbody></table>")
