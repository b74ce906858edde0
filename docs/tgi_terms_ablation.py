"""Ablation of the new runtime terms on the TGI online rows: per-(engine, GPU) fit, grouped 5-fold
CV, with and without ``allreduce_bw`` and ``step_overhead_s`` (out-of-fold error per GPU and metric).

Usage (repository root): python docs/tgi_terms_ablation.py   (~3 min of CPU)
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import make_accuracy as M  # noqa: E402

from llmopt_solver.measure.calibration import DEFAULT_PARAMS, calibrate, fit_gpus  # noqa: E402
from llmopt_solver.measure.profile import error_table  # noqa: E402
from llmopt_solver.measure.validation import DEFAULT_GPU_MAP, map_rows, prepare, read_measurements  # noqa: E402

t = time.time()
spec = M.spec_catalog()
prep = prepare(map_rows(read_measurements(M.TGI), spec, DEFAULT_GPU_MAP, M.FIT_FRAMEWORKS), spec)
old = tuple(k for k in DEFAULT_PARAMS if k not in ("allreduce_bw", "step_overhead_s"))
for name, params in (("new terms", DEFAULT_PARAMS), ("without allreduce_bw, step_overhead_s", old)):
    def fm(tasks: list, params: tuple[str, ...] = params) -> list:
        return [fit_gpus(prep, spec, m, params, by=by, grid_sweeps=1, max_iter=15, grid_points=5, fixed=fx, start=x0)
                for m, by, fx, x0 in tasks]
    r = calibrate(prep, spec, folds=5, param_names=params, by="engine", grid_sweeps=1, max_iter=15, fit_map=fm)
    print("==", name, f"{time.time() - t:.0f}s", flush=True)
    for key in (lambda c: f"{c.gpu}|{c.engine}|{c.metric}", lambda c: f"{c.gpu}|{c.engine}"):
        for k, v in error_table(prep, r.cv_pred, key=key).items():
            print(k, v, flush=True)
    for k, f in r.fits.items():
        print(k, {a: float(f"{b:.3g}") for a, b in f.params.items()}, flush=True)
