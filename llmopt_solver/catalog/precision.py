"""Numeric precisions: bytes per value and which tensor-core peak a GPU uses for them."""

from __future__ import annotations

from enum import StrEnum

from llmopt_solver.errors import InputError

# int4 weights carry one fp16 scale per group of 64 values (group-wise quantisation as in
# GPTQ/AWQ and FlexGen's compression, group size 64): 0.5 + 2/64 bytes per value.
INT4_GROUP_SIZE = 64


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    FP8 = "fp8"
    INT8 = "int8"
    INT4 = "int4"

    @property
    def bytes_per_value(self) -> float:
        """Bytes one stored value takes, group scales included."""
        return {
            "fp32": 4.0,
            "fp16": 2.0,
            "bf16": 2.0,
            "fp8": 1.0,
            "int8": 1.0,
            "int4": 0.5 + 2.0 / INT4_GROUP_SIZE,
        }[self.value]

    @property
    def peak_field(self) -> str:
        """Name of the GpuSpec field holding the dense peak used for matmuls in this precision.

        int4 is weight-only (dequantised to fp16 before the matmul), so it runs on fp16 tensor
        cores; int8 is W8A8 on int8 tensor cores; fp8 needs fp8 tensor cores (Ada, Hopper).
        """
        return {
            "fp32": "fp32_tflops",
            "fp16": "fp16_tflops",
            "bf16": "bf16_tflops",
            "fp8": "fp8_tflops",
            "int8": "int8_tops",
            "int4": "fp16_tflops",
        }[self.value]

    @property
    def activation_bytes(self) -> float:
        """Bytes per activation value: fp32 runs keep fp32 activations, all others fp16/bf16."""
        return 4.0 if self is Precision.FP32 else 2.0


_BY_BYTES = {"4": Precision.FP32, "2": Precision.FP16, "1": Precision.INT8}
ALLOWED = "1, 2, 4 (bytes) or fp32, fp16, bf16, fp8, int8, int4"


def parse_precision(value: str | int | float | Precision, field: str = "--precision") -> Precision:
    """Returns the Precision named by bytes (1, 2, 4) or by name; raises InputError otherwise."""
    if isinstance(value, Precision):
        return value
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    if text in _BY_BYTES:
        return _BY_BYTES[text]
    try:
        return Precision(text)
    except ValueError:
        raise InputError(field=field, problem=f"{value!r} is not a precision", allowed=ALLOWED) from None
