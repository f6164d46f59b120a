#!/usr/bin/env python3
"""Reference dequantization by the gguf Python package (llama.cpp's gguf-py).

Usage: dequant_ref.py TYPE IN OUT
  TYPE  q4_k or q6_k
  IN    raw blocks (a whole number of 144-byte Q4_K or 210-byte Q6_K blocks)
  OUT   gets the dequantized values, little-endian f32, 256 per block

tests/test_quant_gguf.c compares the host dequantizer with OUT bit for bit.
"""
import sys

try:
    import numpy as np
    from gguf import GGMLQuantizationType as QT
    from gguf import GGML_QUANT_SIZES
    from gguf.quants import dequantize
except ImportError as e:
    sys.stderr.write(
        f"dequant_ref.py: {e}\n"
        "dequant_ref.py: the Python packages 'gguf' and 'numpy' are needed: run the project's "
        "set-up, scripts/setup.sh (it installs them; by hand: python3 -m pip install gguf numpy)\n")
    sys.exit(2)


def main():
    if len(sys.argv) != 4 or sys.argv[1].lower() not in ("q4_k", "q6_k"):
        sys.stderr.write(__doc__)
        sys.exit(1)
    qtype = QT[sys.argv[1].upper()]
    _, block_bytes = GGML_QUANT_SIZES[qtype]
    raw = np.fromfile(sys.argv[2], dtype=np.uint8)
    if raw.size == 0 or raw.size % block_bytes:
        sys.stderr.write(f"dequant_ref.py: {raw.size} bytes is not a whole number of "
                         f"{block_bytes}-byte blocks\n")
        sys.exit(1)
    values = dequantize(raw.reshape(-1, block_bytes), qtype)
    values.astype("<f4").ravel().tofile(sys.argv[3])


if __name__ == "__main__":
    main()
