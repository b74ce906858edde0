"""The disk (NVMe) tier of FlexGen's placement: weights and KV cache kept on disk, read back every pass.

FlexGen (Sheng et al., ICML 2023, section 4) places weights, KV cache and activations over GPU,
CPU and disk; its cost model reads a disk-resident tensor disk -> CPU -> GPU every time the
layer runs and writes the new KV to disk, overlapping the I/O with compute. The disk shares are
on top of the host (CPU) shares: a disk-resident tensor also crosses PCIe like a CPU-resident one
(the caller counts it in the offloaded fractions); this module adds the disk reads and writes.
The bandwidths are the host's, stated with the measurement (e.g. FlexGen's T4 box: NVMe ~2 GB/s
read, ~1 GB/s write).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GB = 1e9


@dataclass(frozen=True)
class DiskTier:
    """Shares of the weights and KV cache on disk, and the disk's read / write bandwidth, GB/s."""

    weight_fraction: float
    kv_fraction: float
    read_gb_s: float
    write_gb_s: float


@dataclass(frozen=True)
class DiskTime:
    """Disk time per forward pass (s, arrays (N,)): decode step = a + slope x context; prefill."""

    a: np.ndarray  # disk-resident weights read + the new token's KV written, per decode step
    slope: np.ndarray  # the disk-resident KV of one more context token read, per decode step
    prefill_s: np.ndarray  # weights read once + the prompt's KV written
    disk_gb: np.ndarray  # bytes kept on disk (not in host memory), per GPU, GB


def disk_time(disk: DiskTier | None, weight_bytes: np.ndarray, kv_bytes_per_token: np.ndarray | float, b: np.ndarray,
              tokens: np.ndarray, kv_full_bytes: np.ndarray) -> DiskTime:
    """Returns the disk time of a pass (zeros without a disk tier).

    Args:
        weight_bytes: the weights one pass reads, per GPU; kv_bytes_per_token: KV bytes per token
            per GPU; b: batch; tokens: prompt tokens of the batch; kv_full_bytes: KV of the whole run.
    """
    zero = np.zeros_like(np.asarray(b, dtype=float))
    if disk is None:
        return DiskTime(zero, zero, zero, zero)
    read, write = disk.read_gb_s * GB, disk.write_gb_s * GB
    w = disk.weight_fraction * weight_bytes
    kv_tok = disk.kv_fraction * b * kv_bytes_per_token
    return DiskTime(a=w / read + kv_tok / write, slope=kv_tok / read,
                    prefill_s=w / read + disk.kv_fraction * tokens * kv_bytes_per_token / write,
                    disk_gb=(w + disk.kv_fraction * kv_full_bytes) / GB)
