"""Offload placement read from a row's ``notes``: FlexGen policies, ZeRO-Inference, HF Accelerate.

A ``Placement`` says which share of the weights and of the KV cache lives in host memory, whether
attention over host KV runs on the CPU, and whether transfers overlap compute. It is what the
predictor's weight/KV offload inputs take; FlexGen's disk tier is modelled (``predictor.disk``)
when the notes state the disk's bandwidth; ZeRO-Inference NVMe and Accelerate disk offload are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from llmopt_solver.measure.rows import MeasurementRow
from llmopt_solver.predictor.disk import DiskTier


@dataclass(frozen=True)
class Placement:
    """Where weights and KV live: fractions in host memory, CPU attention, overlap.

    ``gpu_weight_gb`` (HF Accelerate ``max_memory``): GPU budget for weights, GB; the rest of the
    weights is offloaded (the fraction is computed from the model size at replay time).
    ``disk``: FlexGen's disk tier (shares of weights / KV on disk, the disk's bandwidth); the
    offloaded fractions include the disk shares (a disk tensor also crosses PCIe).
    """

    weight_offload: float = 0.0
    kv_offload: float = 0.0
    cpu_attention: bool = False
    overlap: bool = False
    gpu_weight_gb: float | None = None
    disk: DiskTier | None = None
    gpu_batch: int | None = None  # FlexGen: sequences on the GPU at once ('gpu_batch G x N blocks')


DISK = "weights or KV cache on disk ({}): disk offloading is not modelled (no sourced NVMe read bandwidth in the catalog)"
DISK_BW = ("weights or KV cache on disk ({}): the notes state no disk bandwidth "
           "(need e.g. '~2GB/s read, ~1GB/s write')")


def _disk_bandwidth(notes: str) -> tuple[float, float] | None:
    """Returns the (read, write) disk bandwidth in GB/s stated in the notes, or None."""
    rd = re.search(r"(\d+(?:\.\d+)?)\s*gb/s\s*read", notes)
    wr = re.search(r"(\d+(?:\.\d+)?)\s*gb/s\s*write", notes)
    return (float(rd.group(1)), float(wr.group(1))) if rd and wr else None


def _with_disk(wg: int, wc: int, kg: int, kc: int, notes: str, cpu: bool, overlap: bool,
               what: str) -> tuple[Placement | None, str | None]:
    """Returns the placement of GPU/CPU percentages whose remainder is on disk (FlexGen), with the
    disk bandwidth the notes state (the measured host's), or why not."""
    wd, kd = 100 - wg - wc, 100 - kg - kc
    if wd == 0 and kd == 0:
        return Placement(wc / 100.0, kc / 100.0, cpu, overlap), None
    bw = _disk_bandwidth(notes)
    if bw is None:
        return None, DISK_BW.format(what)
    return Placement((wc + wd) / 100.0, (kc + kd) / 100.0, cpu, overlap,
                     disk=DiskTier(wd / 100.0, kd / 100.0, bw[0], bw[1])), None


def _flexgen(notes: str, cpu: bool, overlap: bool) -> tuple[Placement | None, str | None]:
    """FlexGen ``percent w_gpu w_cpu kv_gpu kv_cpu act_gpu act_cpu`` (the rest on disk) and the
    spelled-out forms of the public set ('percent w 10/90 gpu/cpu, KV 0/100', 'all GPU')."""
    m = re.search(r"percent\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+(\d+)\s+(\d+))?", notes)
    if m:
        wg, wc, kg, kc = (int(m.group(i)) for i in range(1, 5))
    else:
        w = re.search(r"\bw (\d+)/(\d+)", notes)
        kv = re.search(r"\bkv (\d+)/(\d+)", notes)
        if not (w and kv):
            if "all gpu" in notes:
                return Placement(overlap=overlap), None
            if re.search(r"weights?/kv/act 100% cpu", notes):
                return Placement(1.0, 1.0, cpu, overlap), None
            spelled = re.search(r"weights?\s+(\d+)\s*gpu\s*/\s*(\d+)\s*cpu\s*/\s*(\d+)\s*disk,\s*kv\s+(\d+)%\s*(gpu|cpu|disk)", notes)
            if spelled:  # 'weights 0 GPU/50 CPU/50 disk, KV 100% disk'
                wg, wc = int(spelled.group(1)), int(spelled.group(2))
                kv_pct, where = int(spelled.group(4)), spelled.group(5)
                kg, kc = (kv_pct if where == "gpu" else 0), (kv_pct if where == "cpu" else 0)
                if kv_pct != 100 or wg + wc + int(spelled.group(3)) != 100:
                    return None, "FlexGen placement in notes not understood (shares do not add up to 100)"
                return _with_disk(wg, wc, kg, kc, notes, cpu, overlap, "FlexGen policy in notes")
            if "disk" in notes:
                return None, DISK.format("FlexGen policy in notes")
            return None, "FlexGen placement in notes not understood (need 'percent a b c d e f', 'all GPU' or 'w G/C ..., KV G/C')"
        wg, wc, kg, kc = int(w.group(1)), int(w.group(2)), int(kv.group(1)), int(kv.group(2))
    if wg + wc > 100 or kg + kc > 100:
        return None, f"FlexGen percent {wg} {wc} {kg} {kc}: GPU + CPU share above 100"
    # FlexGen's policy puts what is not on GPU or CPU on disk ("remainder on disk"): only a
    # non-zero remainder is a disk placement.
    return _with_disk(wg, wc, kg, kc, notes, cpu, overlap,
                      f"FlexGen percent leaves {100 - wg - wc}% of weights, {100 - kg - kc}% of KV on disk")


def _zero(notes: str) -> tuple[Placement | None, str | None]:
    """ZeRO-Inference: weights offloaded to CPU (streamed layer by layer, prefetched: overlapped)
    or to NVMe (not modelled); optional KV offload to CPU (DeepSpeed's kv offload streams it back)."""
    if re.search(r"nvme|disk", notes):
        return None, DISK.format("ZeRO-Inference NVMe offload in notes")
    w = 1.0 if re.search(r"(weights?|params?|parameters?)[^;,.]*offload[^;,.]*cpu|offload[^;,.]*cpu|cpu offload", notes) else 0.0
    kv = 1.0 if re.search(r"kv[- ]?(cache)?[^;,.]*offload|offload[^;,.]*kv", notes) else 0.0
    return Placement(weight_offload=w, kv_offload=kv, overlap=True), None


def _accelerate(notes: str) -> tuple[Placement | None, str | None]:
    """HF Accelerate big-model inference: device_map/max_memory put layers on GPU, CPU or disk;
    CPU layers are copied to the GPU at every forward (hooks, synchronous: no overlap)."""
    if re.search(r"disk|offload_folder", notes):
        return None, DISK.format("Accelerate offload_folder/disk in notes")
    m = re.search(r"max_memory.*?(\d+(?:\.\d+)?)\s*(gib|gb)", notes)  # the first (GPU) budget
    if m:
        gb = float(m.group(1)) * (2**30 / 1e9 if m.group(2) == "gib" else 1.0)
        return Placement(gpu_weight_gb=gb, overlap=False), None
    if re.search(r"cpu offload|offload[^;,.]*cpu|device_map", notes):
        # device_map='auto': the GPU is filled first; replay offloads just what does not fit.
        return Placement(gpu_weight_gb=-1.0, overlap=False), None
    return Placement(), None


def offload_placement(row: MeasurementRow) -> tuple[Placement | None, str | None]:
    """Returns the placement described in a row's notes, or (None, why it cannot be modelled).

    FlexGen rows (framework FlexGen*): see ``_flexgen``; 'CPU attention' and 'no overlap' (FlexGen
    overlaps I/O and compute by default) are read too. ZeRO-Inference (framework DeepSpeed ZeRO /
    'zero-inference' in the notes) and HF Accelerate (framework accelerate / 'device_map' in the
    notes): see ``_zero`` and ``_accelerate``. Other rows: all on GPU.
    """
    notes = row.notes.lower()
    fw = row.framework.lower()
    if "flexgen" in fw or "flexllmgen" in fw:
        pl, why = _flexgen(notes, "cpu attention" in notes, "no overlap" not in notes)
        gb = re.search(r"gpu_batch\s+(\d+)", notes)
        return (replace(pl, gpu_batch=int(gb.group(1))) if pl is not None and gb else pl), why
    if "zero" in fw or "zero-inference" in notes or "zero inference" in notes:
        return _zero(notes)
    if "accelerate" in fw or "device_map" in notes or "max_memory" in notes:
        return _accelerate(notes)
    return Placement(), None


flexgen_placement = offload_placement  # the name of the FlexGen-only reader it replaces
