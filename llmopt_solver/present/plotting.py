"""Matplotlib (the optional ``plot`` extra) behind one door: import check, Agg, deterministic files.

Deterministic: the SVG hash salt is fixed and no date or software version goes into the metadata,
so the same input gives the same bytes. Files are written atomically (temp file + rename).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from llmopt_solver.errors import InputError
from llmopt_solver.fileio import write_output

INSTALL = "pip install 'llmopt[plot]'"
FORMATS = (".png", ".svg")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")


def have_matplotlib() -> bool:
    """Returns True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def pyplot(flag: str = "--plot") -> Any:
    """Returns matplotlib.pyplot on the Agg backend; InputError (exit 2) naming ``flag`` if absent."""
    try:
        import matplotlib
    except ImportError:
        raise InputError(field=flag, problem="needs matplotlib, which is not installed",
                         hint=f"Install the plot extra: {INSTALL}") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "llmopt"
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    matplotlib.rcParams["font.size"] = 9
    return plt


def check_path(path: str, flag: str = "--plot") -> str:
    """Returns the file's format ('png' or 'svg'); InputError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(field=flag, problem=f"{path!r} has no picture suffix", allowed="a file name ending in .png or .svg")
    return suffix[1:]


def figure_bytes(fig: Any, fmt: str) -> bytes:
    """Returns the figure rendered as ``fmt`` ('png' or 'svg') without date or version metadata."""
    buf = io.BytesIO()
    meta = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buf, format=fmt, dpi=100, metadata=meta, bbox_inches="tight")
    return buf.getvalue()


def save(fig: Any, path: str) -> None:
    """Writes the figure to ``path`` (format from the suffix) atomically, then closes it."""
    import matplotlib.pyplot as plt

    try:
        data = figure_bytes(fig, check_path(path))
    finally:
        plt.close(fig)
    write_output(path, data)


def svg_inline(fig: Any) -> str:
    """Returns the figure as an SVG element for inlining in HTML (XML prolog dropped), then closes it."""
    import matplotlib.pyplot as plt

    try:
        text = figure_bytes(fig, "svg").decode("utf-8")
    finally:
        plt.close(fig)
    text = text[text.index("<svg"):]
    # The RDF metadata block (creator, type) is no use inside a page.
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)


def check_out_files(plot_file: str | None, report_file: str | None) -> None:
    """Checks --plot and --report names before any work: InputError (exit 2) for a wrong suffix,
    or for --plot when matplotlib is missing (with the install command)."""
    if plot_file:
        check_path(plot_file)
        pyplot()
    if report_file and not report_file.lower().endswith((".html", ".htm")):
        raise InputError(field="--report", problem=f"{report_file!r} is not an HTML file name",
                         allowed="a file name ending in .html")
