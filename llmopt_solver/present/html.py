"""Building blocks of the self-contained HTML reports: escaping, tables, the page skeleton.

No script, no external resource: the page views offline, and a strict CSP says so to the browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from llmopt_solver.present.plotting import INSTALL

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1250px;
padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}th,td{padding:2px 8px;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6}th,td{white-space:nowrap}table.kv td{white-space:normal}
.wrap{overflow-x:auto}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.pick td{background:#fff6d5;font-weight:600}.pick-box{background:#fff6d5;border:1px solid #e6c200;
padding:.6em 1em;border-radius:6px}.note{color:#555;font-size:12.5px}figure{margin:1em 0}
figure svg,figure img{max-width:100%;height:auto}code{background:#f3f3f3;padding:0 3px}
"""


def e(x: Any) -> str:
    """Returns ``x`` as HTML-escaped text."""
    return escape(str(x), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None,
          highlight: Iterable[int] = (), table_id: str | None = None) -> str:
    """Returns an HTML table; ``numeric`` right-aligns columns; rows in ``highlight`` get class pick."""
    hl = set(highlight)
    num = list(numeric) if numeric is not None else [False] * len(headers)
    tid = f' id="{e(table_id)}"' if table_id else ""
    out = [f'<div class="wrap"><table{tid}><thead><tr>' + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for k, row in enumerate(rows):
        cls = ' class="pick"' if k in hl else ""
        cells = "".join(f'<td class="n">{e(c)}</td>' if num[j] else f"<td>{e(c)}</td>" for j, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def kv_list(items: Iterable[tuple[str, Any]]) -> str:
    """Returns a two-column table of (name, value)."""
    html = table(("", ""), items).replace("<thead><tr><th></th><th></th></tr></thead>", "")
    return html.replace("<table>", '<table class="kv">', 1)


def figure(svg: str | None, caption: str) -> str:
    """Returns the inline SVG with its caption, or a note that the picture needs the plot extra."""
    if svg is None:
        return (f'<p class="note" id="no-picture">The picture needs matplotlib (the plot extra): '
                f"<code>{e(INSTALL)}</code>. The tables below carry the same figures.</p>")
    return f"<figure>{svg}<figcaption class=\"note\">{e(caption)}</figcaption></figure>"


def page(title: str, body: str) -> str:
    """Returns the whole HTML document (UTF-8, no script, no network)."""
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)}</title>\n<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
