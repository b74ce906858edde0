"""Reads a user catalog file (``--catalog``/``--calibration``, JSON or CSV) into plain data, or CatalogError."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from llmopt_solver.errors import CatalogError


def read_user_file(path: Path, flag: str = "--catalog") -> dict[str, Any]:
    """Returns the file's data: a JSON object with known keys, or a CSV as {"instances"|"gpus": rows}."""
    label = f"{flag} {path}"
    if not path.is_file():
        raise CatalogError(f"{label}: file not found.")
    try:
        text = path.read_text(encoding="utf-8-sig")  # with or without a BOM
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{label}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
        if not isinstance(data, dict) or not set(data) & {"gpus", "instances", "models", "efficiency", "uncertainty", "engines"}:
            raise CatalogError(f"{label}: expected a JSON object with any of the keys 'gpus', 'instances', 'models', 'efficiency'.")
        unknown = set(data) - {"gpus", "instances", "models", "efficiency", "uncertainty", "engines", "source", "as_of", "calibration"}
        if unknown:
            raise CatalogError(f"{label}: unknown key(s) {sorted(unknown)}; allowed: gpus, instances, models, efficiency, uncertainty, engines, source, as_of, calibration.")
        return data
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            raise CatalogError(f"{label}: CSV has no data rows.")
        cols = set(rows[0])
        clean = [{k: csv_value(v) for k, v in r.items() if k and csv_value(v) is not None} for r in rows]
        if "gpu_count" in cols:
            return {"instances": clean}
        if "memory_bandwidth_gb_s" in cols:
            return {"gpus": clean}
        raise CatalogError(f"{label}: CSV columns not recognised: an instance file needs 'gpu_count', a GPU file 'memory_bandwidth_gb_s'.")
    raise CatalogError(f"{label}: unsupported file type {path.suffix!r}; allowed: .json, .csv.")


def csv_value(v: str | None) -> Any:
    """Returns a CSV cell as int, float or text; None when empty."""
    if v is None or v.strip() == "":
        return None
    s = v.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s
