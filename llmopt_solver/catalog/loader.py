"""Loads the built-in catalogs (GPUs, instances, efficiencies, model cards) and merges user files.

Built-ins are package data (``llmopt_solver/data``, ``llmopt_solver/models`` in a wheel; the
repository's top-level ``models/`` in a source checkout). A user file (``--catalog FILE``, JSON or
CSV) merges over them by key: a record with the same name replaces the built-in one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from llmopt_solver.catalog import gpu_names
from llmopt_solver.catalog.engines import EngineProfile
from llmopt_solver.catalog.model_cards import ModelCard, card_from_dict, load_model_file, model_dir
from llmopt_solver.catalog.record_base import Record, validation_error
from llmopt_solver.catalog.records import Efficiency, EfficiencyOverride, GpuSpec, InstanceSpec, Uncertainty
from llmopt_solver.errors import CatalogError, ModelConfigError, did_you_mean, first_validation_error


@dataclass
class Catalog:
    """Everything llmopt knows: GPUs, instances, efficiency parameters and models, by name."""

    gpus: dict[str, GpuSpec] = field(default_factory=dict)
    instances: dict[str, InstanceSpec] = field(default_factory=dict)
    default_efficiency: Efficiency | None = None
    efficiency_overrides: dict[str, EfficiencyOverride] = field(default_factory=dict)
    efficiency_sources: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelCard] = field(default_factory=dict)
    calibrated_gpus: dict[str, str] = field(default_factory=dict)  # gpu -> profile source
    default_uncertainty: Uncertainty | None = None  # spec-only GPUs
    default_transferred: bool = False  # defaults carry runtime parameters fitted on other GPUs
    uncertainties: dict[str, Uncertainty] = field(default_factory=dict)  # calibrated GPUs
    engines: dict[str, EngineProfile] = field(default_factory=dict)
    # (engine, gpu) -> override; gpu None is the engine's default (its transfer rule for GPUs
    # without (engine, GPU) data). Applied over the GPU's own efficiency.
    engine_efficiency: dict[tuple[str, str | None], EfficiencyOverride] = field(default_factory=dict)
    engine_uncertainty: dict[tuple[str, str | None], Uncertainty] = field(default_factory=dict)
    # Layers a user file gave (--catalog, --calibration): (None, gpu) for a GPU's efficiency or
    # band, (engine, gpu) / (engine, None) for an engine's. They apply after every built-in layer,
    # so a user's own calibration is never overridden by a built-in engine default.
    user_layers: set[tuple[str | None, str | None]] = field(default_factory=set)
    user_gpu_efficiency: dict[str, EfficiencyOverride] = field(default_factory=dict)  # only the user's fields

    def uncertainty(self, gpu: str, engine: str | None = None) -> Uncertainty:
        """Returns the band for ``gpu`` on ``engine``: (engine, GPU); else the GPU's own (ranges kept) widened to
        the engine's transfer band (engine, default); else that band; else the spec-only default."""
        assert self.default_uncertainty is not None  # set by load_catalog
        user_gpu_wins = (None, gpu) in self.user_layers and (engine, gpu) not in self.user_layers
        if engine is not None and (engine, gpu) in self.engine_uncertainty and not user_gpu_wins:
            return self.engine_uncertainty[(engine, gpu)]
        transfer, own = self.engine_uncertainty.get((str(engine), None)), self.uncertainties.get(gpu)
        return own.widened(transfer) if own and transfer else (
            own or transfer or self.default_uncertainty)

    def efficiency(self, gpu: str, engine: str | None = None) -> Efficiency:
        """Returns the efficiency parameters for ``gpu`` (on ``engine``): defaults, then the GPU's
        overrides, then the engine's default overrides, then its (engine, GPU) overrides; layers a
        user file gave come after the built-in ones, in the same order."""
        assert self.default_efficiency is not None  # set by load_catalog
        engine_keys: list[tuple[str, str | None]] = [] if engine is None else [(engine, None), (engine, gpu)]
        builtin = [self.engine_efficiency.get(k) for k in engine_keys if k not in self.user_layers]
        user = [self.engine_efficiency.get(k) for k in engine_keys if k in self.user_layers]
        eff = self.default_efficiency
        # efficiency_overrides holds the GPU's built-in and user fields merged; the user's are applied
        # again after the built-in engine layers so that those never replace them.
        for override in (self.efficiency_overrides.get(gpu), *builtin, self.user_gpu_efficiency.get(gpu), *user):
            if override is not None:
                eff = override.apply(eff)
        return eff

    def engine(self, name: str) -> EngineProfile:
        """Returns the engine named ``name`` (name or alias, case-insensitive); CatalogError otherwise."""
        for prof in self.engines.values():
            if prof.matches(name):
                return prof
        raise CatalogError(field="--engine", problem=f"unknown engine {name!r}",
                           allowed=", ".join(sorted(self.engines)),
                           hint=did_you_mean(name, list(self.engines)).strip() or None)

    def engine_for_framework(self, framework: str) -> EngineProfile | None:
        """Returns the engine a measurement file's ``framework`` text names, or None if unknown."""
        return next((p for p in self.engines.values() if p.matches(framework)), None)

    def gpu(self, name: str) -> GpuSpec:
        """Returns the GPU named ``name`` (case-insensitive); CatalogError with close matches."""
        found = _lookup(self.gpus, name)
        if found is None:
            raise CatalogError(f"unknown GPU {name!r}; known: {', '.join(sorted(self.gpus))}.{did_you_mean(name, list(self.gpus))}")
        return found

    def resolve_gpu(self, text: str, extra: dict[str, str] | None = None) -> gpu_names.GpuMatch:
        """Returns the catalog GPU name (or None) with how it was read or why not, for a GPU name as people
        write it ('A10G-24GB (AWS g5.2xlarge)', 'A100-SXM4-80GB'); ``extra`` maps names first."""
        return gpu_names.resolve(text, self.gpus.values(), extra)

    def instance(self, name: str) -> InstanceSpec:
        """Returns the instance type named ``name`` (case-insensitive)."""
        found = _lookup(self.instances, name)
        if found is None:
            raise CatalogError(f"unknown instance {name!r} (see `llmopt catalog instances`).{did_you_mean(name, list(self.instances))}")
        return found

    def model(self, name_or_path: str) -> ModelCard:
        """Returns a model by HF id, alias (case-insensitive) or path to a local config.json."""
        key = name_or_path.strip().lower()
        for card in self.models.values():
            if key == card.name.lower() or key in (a.lower() for a in card.aliases):
                return card
        path = Path(name_or_path).expanduser()
        if path.suffix.lower() == ".json" or path.exists() or "/" in name_or_path and path.parent.exists():
            return load_model_file(path)
        names = sorted({c.short_name for c in self.models.values()})
        allnames = [c.name for c in self.models.values()] + [a for c in self.models.values() for a in c.aliases]
        raise ModelConfigError(
            field="--model", problem=f"unknown model {name_or_path!r}; known: {', '.join(names)} "
            f"(or a path to a Hugging Face config.json).{did_you_mean(name_or_path, allnames)}"
        )


def _lookup(table: dict[str, Any], name: str) -> Any:
    if name in table:
        return table[name]
    low = name.lower()
    for k, v in table.items():
        if k.lower() == low:
            return v
    return None


def _first_error(exc: Exception) -> str:
    loc, msg, _ = first_validation_error(exc)
    return f"field {loc or 'record'!r}: {msg}"


def _parse(kind: type[Record], rec: Any, trusted: bool) -> Any:
    """Returns the ``kind`` record of ``rec``: converted only when ``trusted`` (package data, checked by
    tests/test_record_base.py), else validated (pydantic ValidationError on a broken rule)."""
    return kind.trusted(rec) if trusted else kind.model_validate(rec)


def _records(label: str, records: Iterable[dict[str, Any]], kind: type[Record], trusted: bool = False) -> list[Any]:
    out = []
    for i, rec in enumerate(records):
        try:
            out.append(_parse(kind, rec, trusted))
        except validation_error() as exc:
            name = rec.get("name", f"#{i}") if isinstance(rec, dict) else f"#{i}"
            what = kind.__name__.removesuffix("Spec").removesuffix("Profile").lower()
            raise CatalogError(f"{label}: {what} {name!r}: {_first_error(exc)}.") from None
    return out


def _data_text(name: str) -> str:
    return resources.files("llmopt_solver").joinpath("data").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=2)
def builtin_catalog(trusted: bool = True) -> Catalog:
    """Returns the package's catalog (shared: copy before changing); ``trusted=False`` validates every
    record as a user file's (tests compare the two)."""
    cat = Catalog()
    gpus = json.loads(_data_text("gpus.json"))["gpus"]
    cat.gpus = {g.name: g for g in _records("built-in gpus.json", gpus, GpuSpec, trusted)}
    insts = json.loads(_data_text("instances.json"))["instances"]
    cat.instances = {i.name: i for i in _records("built-in instances.json", insts, InstanceSpec, trusted)}
    eff = json.loads(_data_text("efficiency.json"))
    _merge_efficiency(cat, eff, "built-in efficiency.json", trusted)
    cat.efficiency_sources = dict(eff.get("sources", {}))
    _merge_uncertainty(cat, eff.get("uncertainty", {}), "built-in efficiency.json", trusted)
    # Built-in calibration profile (fitted on the public sets by docs/make_accuracy.py): the
    # GPUs it names become "calibrated", with fitted efficiencies and error bands.
    cal_file = resources.files("llmopt_solver").joinpath("data").joinpath("calibration.json")
    if cal_file.is_file():
        cal = json.loads(cal_file.read_text(encoding="utf-8"))
        _merge_efficiency(cat, cal.get("efficiency", {}), "built-in calibration.json", trusted)
        cat.default_transferred = "default" in cal.get("efficiency", {})
        _merge_uncertainty(cat, cal.get("uncertainty", {}), "built-in calibration.json", trusted)
        for gpu in (cal.get("efficiency", {}).get("gpus") or {}):
            cat.calibrated_gpus[gpu] = str(cal.get("source", "built-in calibration.json"))
    engine_dir = resources.files("llmopt_solver").joinpath("data").joinpath("engines")
    for entry in sorted(engine_dir.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            for prof in _engine_records(f"built-in engines/{entry.name}", [json.loads(entry.read_text(encoding="utf-8"))], trusted):
                cat.engines[prof.name] = prof
    cards = {}
    for entry in sorted(model_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            card = card_from_dict(json.loads(entry.read_text(encoding="utf-8")), entry.name, check=not trusted)
            cards[card.name] = card
    cat.models = cards
    return cat


def _merge_uncertainty(cat: Catalog, data: dict[str, Any], label: str, trusted: bool = False) -> None:
    try:
        if "default" in data:
            cat.default_uncertainty = _parse(Uncertainty, data["default"], trusted)
        for gpu, rec in (data.get("gpus") or {}).items():
            cat.uncertainties[gpu] = _parse(Uncertainty, rec, trusted)
        for engine, block in (data.get("engines") or {}).items():
            if "default" in block:
                cat.engine_uncertainty[(engine, None)] = _parse(Uncertainty, block["default"], trusted)
            for gpu, rec in (block.get("gpus") or {}).items():
                cat.engine_uncertainty[(engine, gpu)] = _parse(Uncertainty, rec, trusted)
    except (validation_error(), AttributeError) as exc:
        what = _first_error(exc) if isinstance(exc, validation_error()) else "engines.<name> must be an object"
        raise CatalogError(f"{label}: uncertainty: {what}.") from None


def _merge_engine_efficiency(cat: Catalog, data: dict[str, Any], label: str, trusted: bool) -> None:
    """Merges ``efficiency.engines`` = {engine: {"default": {...}, "gpus": {gpu: {...}}}}."""
    for engine, block in (data.get("engines") or {}).items():
        if not isinstance(block, dict):
            raise CatalogError(f"{label}: efficiency.engines.{engine} must be an object with 'default' and/or 'gpus'.")
        recs = [(None, block["default"])] if "default" in block else []
        recs += list((block.get("gpus") or {}).items())
        for gpu, rec in recs:
            try:
                override = _parse(EfficiencyOverride, rec, trusted)
            except validation_error() as exc:
                raise CatalogError(f"{label}: efficiency for engine {engine!r}, GPU {gpu or 'default'!r}: "
                                   f"{_first_error(exc)}.") from None
            cat.engine_efficiency[(engine, gpu)] = override


def _engine_records(label: str, recs: Any, trusted: bool = False) -> list[EngineProfile]:
    if not isinstance(recs, list):
        raise CatalogError(f"{label}: 'engines' must be a list of engine profiles.")
    return _records(label, recs, EngineProfile, trusted)


def _merge_efficiency(cat: Catalog, data: dict[str, Any], label: str, trusted: bool = False, user: bool = False) -> None:
    if not isinstance(data, dict):
        raise CatalogError(f"{label}: 'efficiency' must be an object with 'default' and/or 'gpus'.")
    if "default" in data:
        base = cat.default_efficiency.model_dump() if cat.default_efficiency else {}
        try:
            if base:
                cat.default_efficiency = _parse(EfficiencyOverride, data["default"], trusted).apply(cat.default_efficiency)
            else:
                cat.default_efficiency = _parse(Efficiency, data["default"], trusted)
        except validation_error() as exc:
            raise CatalogError(f"{label}: efficiency default: {_first_error(exc)}.") from None
    _merge_engine_efficiency(cat, data, label, trusted)
    for gpu, rec in (data.get("gpus") or {}).items():
        try:
            override = _parse(EfficiencyOverride, rec, trusted)
        except validation_error() as exc:
            raise CatalogError(f"{label}: efficiency for GPU {gpu!r}: {_first_error(exc)}.") from None
        cat.efficiency_overrides[gpu] = _over(cat.efficiency_overrides.get(gpu), override, trusted)
        if user:
            cat.user_gpu_efficiency[gpu] = _over(cat.user_gpu_efficiency.get(gpu), override, trusted)


def _over(prev: EfficiencyOverride | None, override: EfficiencyOverride, trusted: bool) -> EfficiencyOverride:
    """Returns ``override`` merged over ``prev`` field by field (fields it leaves unset keep prev's)."""
    if prev is None:
        return override
    merged = {k: v for k, v in prev.model_dump().items() if v not in (None, "")}
    merged.update({k: v for k, v in override.model_dump().items() if v not in (None, "")})
    return _parse(EfficiencyOverride, merged, trusted)


def merge_user_file(cat: Catalog, path: Path, flag: str = "--catalog") -> None:
    """Merges a user catalog file (JSON or CSV) into ``cat``; same key replaces the built-in.

    ``flag`` is the option errors name (--catalog, or --calibration for a profile)."""
    label = f"{flag} {path}"
    from llmopt_solver.catalog.user_file import read_user_file  # csv: only for user files

    data = read_user_file(path, flag)
    for key, kind, table in (("gpus", GpuSpec, cat.gpus), ("instances", InstanceSpec, cat.instances)):
        recs = data.get(key) or []
        if not isinstance(recs, list):
            raise CatalogError(f"{label}: '{key}' must be a list of records.")
        for rec in _records(label, recs, kind):
            existing = _lookup(table, rec.name)
            if existing is not None:
                del table[existing.name]
            table[rec.name] = rec
    for prof in _engine_records(label, data.get("engines") or []):
        cat.engines[prof.name] = prof
    for i, rec in enumerate(data.get("models") or []):
        try:
            card = card_from_dict(rec, f"{label} models[{i}]")
        except ModelConfigError as exc:
            raise ModelConfigError(f"{label} models[{i}]: {exc}") from None
        cat.models[card.name] = card
    if "efficiency" in data:
        _merge_efficiency(cat, data["efficiency"], label, user=True)
        src = str(data.get("source", path))
        for gpu in (data["efficiency"].get("gpus") or {}):
            cat.calibrated_gpus[gpu] = src
    for section in ("efficiency", "uncertainty"):
        if section in data:
            cat.user_layers |= _layer_keys(data[section])
    if "uncertainty" in data:
        _merge_uncertainty(cat, data["uncertainty"], label)
    for inst in cat.instances.values():
        if _lookup(cat.gpus, inst.gpu) is None:
            raise CatalogError(f"{label}: instance {inst.name!r} uses GPU {inst.gpu!r}, which is not in the GPU catalog.{did_you_mean(inst.gpu, list(cat.gpus))}")


def _layer_keys(section: Any) -> set[tuple[str | None, str | None]]:
    """Returns the (engine, gpu) layer keys an efficiency or uncertainty section of a user file sets."""
    if not isinstance(section, dict):
        return set()
    keys: set[tuple[str | None, str | None]] = {(None, str(g)) for g in (section.get("gpus") or {})}
    for engine, block in (section.get("engines") or {}).items():
        if isinstance(block, dict):
            keys |= {(str(engine), None)} if "default" in block else set()
            keys |= {(str(engine), str(g)) for g in (block.get("gpus") or {})}
    return keys


def load_catalog(user_files: Iterable[str | Path] = (), calibration: str | Path | None = None) -> Catalog:
    """Returns the built-in catalog with ``user_files``, then the ``calibration`` profile, merged over it."""
    base = builtin_catalog()
    cat = Catalog(
        gpus=dict(base.gpus), instances=dict(base.instances),
        default_efficiency=base.default_efficiency,
        efficiency_overrides=dict(base.efficiency_overrides),
        efficiency_sources=dict(base.efficiency_sources),
        models=dict(base.models), calibrated_gpus=dict(base.calibrated_gpus),
        default_uncertainty=base.default_uncertainty, uncertainties=dict(base.uncertainties),
        default_transferred=base.default_transferred, engines=dict(base.engines),
        engine_efficiency=dict(base.engine_efficiency), engine_uncertainty=dict(base.engine_uncertainty),
        user_layers=set(base.user_layers), user_gpu_efficiency=dict(base.user_gpu_efficiency),
    )
    for f in user_files:
        merge_user_file(cat, Path(f))
    if calibration:
        merge_user_file(cat, Path(calibration), "--calibration")
    return cat
