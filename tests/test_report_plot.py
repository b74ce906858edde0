"""Pictures (--plot) and HTML reports (--report): content, determinism, missing matplotlib, and a
real headless browser (Debian's chromium) loading the report without console errors."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmopt_solver.cli import cli

ROOT = Path(__file__).resolve().parents[1]
ORIG = ["solve", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
        "--safety-factor", "0.87", "--slo-tps", "100"]
CHROMIUM = Path("/usr/bin/chromium")
try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:  # pragma: no cover - the test extra installs it
    HAVE_MPL = False
needs_mpl = pytest.mark.skipif(not HAVE_MPL, reason="matplotlib (the plot extra) is not installed")


def run(args: list[str]):
    return CliRunner().invoke(cli, args)


@needs_mpl
@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_solve_plot_is_deterministic_and_atomic(tmp_path, suffix, original_json):
    a, b = tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"
    assert run(ORIG + ["--plot", str(a)]).exit_code == 0
    assert run(ORIG + ["--plot", str(b)]).exit_code == 0
    assert a.read_bytes() == b.read_bytes()  # same input, same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == [a.name, b.name]  # no temp file left
    data = a.read_bytes()
    if suffix == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        text = data.decode()
        assert "<dc:date>" not in text and "g4dn.xlarge" in text  # the pick named in the legend
        pick_engine = original_json["best"]["engine"]
        assert f"pick: g4dn.xlarge ({pick_engine})" in text  # ... with its engine
        assert f"engine {pick_engine}" in text and "engine sglang" in text  # marker shape per engine
        labels = re.findall(r">([^<>]*)</text>", text)
        assert "1" in labels and "1000" in labels and not any("10^" in x for x in labels)  # plain ticks


@needs_mpl
def test_frontier_picture_draws_identical_points_once():
    from llmopt_solver.frontier import frontier
    from llmopt_solver.present.plot_solve import distinct, fits_memory

    o = _orig_outcome()
    f = frontier(o.table, o.best)
    idx = fits_memory(f)
    d = distinct(o.table, idx)
    t = o.table
    pts = {(round(float(t.cost_per_million_tokens_usd[i]), 9), round(float(t.pred.tps[i]), 9)) for i in idx}
    assert len(pts) <= len(d) < len(idx)  # duplicates (same GPU, same price, two providers) dropped
    assert len({(float(t.cost_per_million_tokens_usd[i]), float(t.pred.tps[i]), float(t.tps_low[i]),
                 float(t.tps_high[i])) for i in d}) == len(d)


def _orig_outcome():
    from llmopt_solver.catalog.precision import parse_precision
    from llmopt_solver.cli.common import make_job, open_catalog
    from llmopt_solver.optimize import optimize
    from llmopt_solver.selection import offload_levels, select_instances

    cat = open_catalog((), None)
    job = make_job(cat, "OPT-2.7B", 32, 128, 512, 0.87, parse_precision("2"), None, offload_levels(0.1),
                   "auto", False, False, 100.0)
    return optimize(cat, job, select_instances(cat))


@needs_mpl
def test_plot_bad_suffix_and_infeasible(tmp_path):
    r = run(ORIG + ["--plot", str(tmp_path / "x.jpg")])
    assert r.exit_code == 2 and "--plot" in r.output and ".png or .svg" in r.output
    r = run(ORIG[:-2] + ["--slo-tps", "1e7", "--plot", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "SLO binds" in r.output
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    r = run(ORIG + ["--plot", str(tmp_path / "x.png")])
    assert r.exit_code == 2
    assert "pip install 'llmopt[plot]'" in r.output and len(r.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_report_without_matplotlib_has_tables_and_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "r.html"
    r = run(ORIG + ["--report", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert 'id="no-picture"' in html and "<svg" not in html
    assert 'id="frontier"' in html and 'id="runners-up"' in html and "g4dn.xlarge" in html


@pytest.fixture(scope="module")
def solve_report(tmp_path_factory) -> Path:
    """The original example's HTML report with a frontier and an SLO sweep (one run per module)."""
    out = tmp_path_factory.mktemp("solve_report") / "r.html"
    r = run(ORIG + ["--report", str(out), "--num-requests", "100000", "--sweep-slo", "0:4000:5"])
    assert r.exit_code == 0, r.output
    return out


@needs_mpl
def test_solve_report_content(solve_report, original_json):
    html = solve_report.read_text()
    for needle in ('id="pick"', f"Pick: g4dn.xlarge ({original_json['best']['engine']})", "Engines compared", "<svg", 'id="frontier"', 'id="runners-up"', 'id="lost"',
                   'id="sweep"', "as of 2026-", "Calibration", "band", "ceil(num_requests / batch)"):
        assert needle in html, needle
    # self-contained: no external fetch of any kind
    for bad in ('src="http', "src='http", 'href="http', "url(http", "@import", "<script", "<link", "<iframe"):
        assert bad not in html, bad


def chromium_dom(path: Path, tmp_path: Path) -> tuple[str, str]:
    """Returns (dumped DOM, stderr log) of headless chromium loading ``path``."""
    profile = tmp_path / "profile"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", path.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def console_messages(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if ":CONSOLE" in ln or "Content Security Policy" in ln]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install -y chromium)")
def test_report_in_headless_chromium(solve_report, tmp_path):
    # The detector works: a page with a console error and a blocked fetch is caught.
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom")</script></body></html>')
    _, log = chromium_dom(bad, tmp_path)
    assert console_messages(log)
    dom, log = chromium_dom(solve_report, tmp_path)
    assert console_messages(log) == []
    assert 'id="pick"' in dom and "Pick: g4dn.xlarge" in dom
    assert ("<svg" in dom) == HAVE_MPL


PLAN = str(ROOT / "examples" / "plan_quota.json")


@pytest.fixture(scope="module")
def plan_files(tmp_path_factory) -> dict[str, Path]:
    """plan_quota.json's picture (PNG and SVG) and HTML report: two runs per module."""
    d = tmp_path_factory.mktemp("plan_files")
    files = {"png": d / "g.png", "html": d / "p.html", "svg": d / "g.svg"}
    r = run(["plan", PLAN, "--report", str(files["html"])] + (["--plot", str(files["png"])] if HAVE_MPL else []))
    assert r.exit_code == 0, r.output
    if HAVE_MPL:
        assert run(["plan", PLAN, "--plot", str(files["svg"])]).exit_code == 0
    return files


@needs_mpl
def test_plan_plot_and_report(plan_files):
    png, html, svg = plan_files["png"], plan_files["html"], plan_files["svg"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = svg.read_text()
    for job in ("nightly-eval", "synthetic-data", "embeddings-summary", "g6e.xlarge", "quota 1", "deadline 4 h",
                "job nightly-eval on tensorrt-llm"):
        assert job in text, job
    page = html.read_text()
    for needle in ('id="pick"', "<svg", 'id="assignments"', "<th>engine</th>", 'id="usage"', "as of 2026-", "per second",
                   "band of measured/predicted"):
        assert needle in page, needle


def test_plan_infeasible_report_exit_1_no_file(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text('{"jobs": [{"name": "a", "model": "OPT-2.7B", "num_requests": 100000000, "input_len": 128,'
                   ' "output_len": 512, "deadline_h": 0.02}], "providers": ["aws"]}')
    out = tmp_path / "out"
    out.mkdir()
    r = run(["plan", str(bad), "--report", str(out / "p.html"), "--plot", str(out / "p.png")] if HAVE_MPL
            else ["plan", str(bad), "--report", str(out / "p.html")])
    assert r.exit_code == 1
    assert list(out.iterdir()) == []


@needs_mpl
def test_validate_plot(tmp_path):
    png = tmp_path / "v.svg"
    r = run(["validate", str(ROOT / "tests" / "data" / "argonne_slice.csv"), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    text = png.read_text()
    assert "e2e_latency_s" in text and "H100-SXM / vLLM" in text and "median |error|" in text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install -y chromium)")
def test_plan_report_in_headless_chromium(plan_files, tmp_path):
    dom, log = chromium_dom(plan_files["html"], tmp_path)
    assert console_messages(log) == []
    assert 'id="assignments"' in dom and "nightly-eval" in dom


def test_make_pictures_writes_only_into_out(tmp_path):
    """docs/make_pictures.py --out DIR: every file of every command goes to DIR (docs/ untouched)."""
    spec = importlib.util.spec_from_file_location("make_pictures", ROOT / "docs" / "make_pictures.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cmds = mod.commands(tmp_path)
    outs = [a for c in cmds for a in c.split() if a.endswith((".png", ".svg", ".html"))]
    assert sorted(Path(a).name for a in outs) == ["plan_gantt.png", "plan_report.html", "solve_frontier.png",
                                                 "solve_report.html", "validate_argonne.png"]
    assert all(Path(a).parent == tmp_path for a in outs)
    assert any("examples/plan_quota.json" in c for c in cmds)
    if HAVE_MPL:  # the cheapest command, run as the script runs it
        val = next(c for c in cmds if c.startswith("validate"))
        assert run(val.split()).exit_code == 0
        assert (tmp_path / "validate_argonne.png").read_bytes()[:4] == b"\x89PNG"
