#!/usr/bin/env python3
"""Writes a small GGUF test file with the `gguf` Python package (llama.cpp's gguf-py).

Usage: gen_gguf.py OUT [--alignment N] [--seed S]

OUT gets a GGUF v3 file with:
  - metadata of every value type: uint8..int64, float32/64, bool, string, arrays of
    numbers, bools and strings, nested arrays, and llama.* shape keys;
  - Q4_K and Q6_K weights of random valid blocks (finite f16 scales, random quant bits),
    F32 tensors, and F16 / Q8_0 / BF16 tensors (types kdispatch lists but does not run).
OUT.ref gets the expected values: for each F32, Q4_K and Q6_K tensor in file order, its
n_elements little-endian f32 values (quant tensors dequantized by gguf.quants).

The C test tests/test_gguf.c runs this script and checks both files.
"""
import argparse
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf import GGUFValueType as VT
except ImportError as e:
    sys.stderr.write(
        f"gen_gguf.py: {e}\n"
        "gen_gguf.py: the Python packages 'gguf' and 'numpy' are needed: run the project's "
        "set-up, scripts/setup.sh (it installs them; by hand: python3 -m pip install gguf numpy)\n")
    sys.exit(2)

QK_K = 256


def random_f16(rng, n, lo, hi, signed):
    """n finite f16 values with magnitudes in [lo, hi), as raw uint16 bytes."""
    mag = rng.uniform(lo, hi, n)
    if signed:
        mag *= rng.choice([-1.0, 1.0], n)
    return mag.astype(np.float16).view(np.uint8).reshape(n, 2)


def q4_k_blocks(rng, nblocks):
    """block_q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles."""
    d = random_f16(rng, nblocks, 1e-3, 2e-2, signed=False)
    dmin = random_f16(rng, nblocks, 1e-3, 2e-2, signed=False)
    rest = rng.integers(0, 256, (nblocks, 12 + QK_K // 2), dtype=np.uint8)
    return np.concatenate([d, dmin, rest], axis=1)


def q6_k_blocks(rng, nblocks):
    """block_q6_K: ql[128], qh[64], int8 scales[16], f16 d last."""
    bits = rng.integers(0, 256, (nblocks, QK_K // 2 + QK_K // 4 + QK_K // 16), dtype=np.uint8)
    d = random_f16(rng, nblocks, 1e-4, 4e-3, signed=True)
    return np.concatenate([bits, d], axis=1)


def quant_tensor(rng, qtype, shape):
    """shape in numpy order (rows..., K); returns the raw block bytes, rows x bytes-per-row."""
    k = shape[-1]
    rows = int(np.prod(shape[:-1]))
    nblocks = rows * (k // QK_K)
    make = q4_k_blocks if qtype == QT.Q4_K else q6_k_blocks
    blocks = make(rng, nblocks)
    return blocks.reshape(*shape[:-1], (k // QK_K) * blocks.shape[1])


def add_metadata(w):
    w.add_name("kdispatch gguf test")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.15625)
    w.add_uint64("test.u64", 18446744073709551615)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float64("test.f64", 3.141592653589793)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", 'h\u00e9llo "w\u00f6rld"\n\ttab')
    w.add_key_value("test.empty_string", "", VT.STRING)
    w.add_key_value("test.arr_u32", list(range(100)), VT.ARRAY, sub_type=VT.UINT32)
    w.add_key_value("test.arr_i16", [-3, 0, 7], VT.ARRAY, sub_type=VT.INT16)
    w.add_key_value("test.arr_u64", [2**64 - 1, 0], VT.ARRAY, sub_type=VT.UINT64)
    w.add_key_value("test.arr_f64", [0.5, -1.25], VT.ARRAY, sub_type=VT.FLOAT64)
    w.add_array("test.arr_f32", [1.5, 2.5, -0.25])
    w.add_array("test.arr_bool", [True, False, True])
    w.add_array("test.arr_str", [f"tok{i}" for i in range(40)])
    w.add_array("test.arr_nested", [[1, 2, 3], [4, 5], [6]])
    w.add_array("test.arr_nested_str", [["a", "b"], ["c"]])
    w.add_array("test.arr_nested3", [[[1], [2, 3]], [[4]]])
    # shape keys of a (tiny) llama-like model, for `kdispatch compare --gguf`
    w.add_context_length(4096)
    w.add_embedding_length(512)
    w.add_feed_forward_length(768)
    w.add_block_count(1)
    w.add_head_count(8)
    w.add_head_count_kv(8)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--alignment", type=int, default=0,
                    help="general.alignment (default: not written, which means 32)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--long-rows", action="store_true",
                    help="also write two weights with rows of 8448 values (the cpu copies "
                         "those in row groups)")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    w = gguf.GGUFWriter(args.out, "llama")
    if args.alignment:
        w.add_custom_alignment(args.alignment)
    add_metadata(w)

    refs = []  # expected f32 values of each F32 / Q4_K / Q6_K tensor, in file order

    def add_quant(name, qtype, shape):
        raw = quant_tensor(rng, qtype, shape)
        w.add_tensor(name, raw, raw_dtype=qtype)
        refs.append(gguf.quants.dequantize(raw, qtype).astype("<f4").ravel())

    def add_f32(name, shape):
        x = rng.standard_normal(shape).astype(np.float32)
        w.add_tensor(name, x)
        refs.append(x.astype("<f4").ravel())

    add_quant("blk.0.ffn_down.weight", QT.Q4_K, (6, 512))       # ne = [512, 6]
    add_f32("blk.0.attn_norm.weight", (512,))
    add_quant("blk.0.ffn_gate.weight", QT.Q6_K, (5, 768))       # ne = [768, 5]
    w.add_tensor("blk.0.f16", rng.standard_normal((2, 64)).astype(np.float16))
    add_f32("blk.0.f32_matrix", (3, 256))
    add_quant("blk.0.ffn_up_exps.weight", QT.Q4_K, (2, 3, 256))  # ne = [256, 3, 2]
    w.add_tensor("blk.0.q8_0", gguf.quants.quantize(rng.standard_normal((2, 64)).astype(np.float32),
                                                    QT.Q8_0), raw_dtype=QT.Q8_0)
    w.add_tensor("blk.0.bf16", gguf.quants.quantize(rng.standard_normal((64,)).astype(np.float32),
                                                    QT.BF16), raw_dtype=QT.BF16)
    add_quant("output.weight", QT.Q6_K, (3, 256))               # ne = [256, 3]
    if args.long_rows:
        add_quant("blk.1.ffn_up.weight", QT.Q4_K, (9, 8448))    # 33 blocks a row
        add_quant("blk.1.ffn_down.weight", QT.Q6_K, (11, 8448))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    with open(args.out + ".ref", "wb") as f:
        for r in refs:
            f.write(r.tobytes())


if __name__ == "__main__":
    main()
