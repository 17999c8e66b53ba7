"""Decoding a fingerprint's sampled raw bytes into numbers.

Samples are little-endian element bytes in the safetensors dtype of their tensor. Floats and
integers decode to Python values so a cast (fp32 -> bf16) can be told apart from other weights;
the other dtypes (BOOL, complex, sub-byte, the rarer float8 kinds) are compared by bytes only.
"""

from __future__ import annotations

import math
import struct

_STRUCT_FLOAT = {"F64": "d", "F32": "f", "F16": "e"}
_STRUCT_INT = {"I8": "b", "U8": "B", "I16": "h", "U16": "H", "I32": "i", "U32": "I"}
_STRUCT_INT.update({"I64": "q", "U64": "Q"})


def _e4m3(byte: int) -> float:
    sign = -1.0 if byte & 0x80 else 1.0
    exponent, mantissa = (byte >> 3) & 0xF, byte & 0x7
    if exponent == 0xF and mantissa == 0x7:
        return math.nan  # e4m3fn has no infinities; this is its only NaN pattern
    if exponent == 0:
        return sign * mantissa / 8 * 2.0**-6
    return sign * (1 + mantissa / 8) * 2.0 ** (exponent - 7)


_E4M3 = tuple(_e4m3(b) for b in range(256))


def decode_sample(dtype: str, data: bytes) -> tuple[str, list[float] | list[int]] | None:
    """("float" | "int", values) for dtypes with a value comparison, else None."""
    if dtype in _STRUCT_FLOAT or dtype in _STRUCT_INT:
        code = _STRUCT_FLOAT.get(dtype) or _STRUCT_INT[dtype]
        values = list(struct.unpack(f"<{len(data) // struct.calcsize(code)}{code}", data))
        return ("float" if dtype in _STRUCT_FLOAT else "int"), values
    if dtype == "BF16":
        # bf16 is the upper half of an f32.
        halves = struct.unpack(f"<{len(data) // 2}H", data)
        widened = struct.pack(f"<{len(halves)}I", *(h << 16 for h in halves))
        return "float", list(struct.unpack(f"<{len(halves)}f", widened))
    if dtype == "F8_E5M2":
        # e5m2 is the upper byte of an f16.
        widened = struct.pack(f"<{len(data)}H", *(b << 8 for b in data))
        return "float", list(struct.unpack(f"<{len(data)}e", widened))
    if dtype == "F8_E4M3":
        return "float", [_E4M3[b] for b in data]
    return None
