#!/usr/bin/python3
"""Write the safetensors fixtures for tests/unit/test_safetensors.c and
tests/integ/test_inspect.sh, and the seed corpus of tests/fuzz/fuzz_safetensors.

An independent writer: only struct, json and numpy (not the safetensors
package), laid out from the format's specification. Run from the repository
root with /usr/bin/python3; the outputs are committed.

  st_mixed.safetensors   every dtype lethe converts, plus U16 (which it does
                         not), a rank-0 and an empty tensor, unicode metadata;
                         data offsets deliberately unaligned, header padded
                         with 3 spaces, JSON keys not in data order
  st_mixed.json          the expected layout and the values converted to
                         float32 (non-finite values as "inf", "-inf", "nan")
  st_small.safetensors   a small model-like file for `lethe inspect`
  st_written.safetensors exactly what lethe_safetensors_write must produce
                         for the tensors listed in WRITTEN (golden bytes)
"""
import json
import os
import struct

import numpy as np

FIX = "tests/ref/fixtures"
SEEDS = "tests/fuzz/corpus/fuzz_safetensors"


def bf16_bits(values):
    """float32 values truncated to bfloat16 bit patterns."""
    return (np.array(values, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def bf16_values(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


# (name, dtype, shape, numpy array in its storage type, float32 values or None)
def mixed_tensors():
    out = []

    def add(name, dtype, shape, arr, f32=True):
        arr = np.ascontiguousarray(arr).reshape(shape)
        vals = None
        if f32:
            with np.errstate(over="ignore"):
                vals = arr.astype(np.float32).reshape(-1)
        out.append((name, dtype, list(shape), arr, vals))

    add("flag", "BOOL", [5], np.array([True, False, True, True, False], dtype=np.bool_))
    add("bytes", "U8", [2, 3], np.array([0, 1, 127, 128, 254, 255], dtype=np.uint8))
    add("half", "F16", [2, 4],
        np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8, np.inf, np.nan], dtype=np.float16))
    add("f64", "F64", [5], np.array([1 / 3, 0.1, -1e-40, 1e300, -2.5e-310], dtype=np.float64))
    bits = bf16_bits([1.0, -3.14159, 1e-39, 3.0e38])
    out.append(("bhalf", "BF16", [4], bits, bf16_values(bits)))
    add("i64", "I64", [5], np.array([0, -1, 2**40 + 1, -(2**63), 123456789], dtype=np.int64))
    add("i32", "I32", [3], np.array([-2**31, 2**31 - 1, 16777217], dtype=np.int32))
    add("weights", "F32", [2, 3],
        np.array([0.5, -1.25, 3e-45, 1e38, -0.0, 7.0], dtype=np.float32))
    add("scalar", "F32", [], np.array(3.5, dtype=np.float32))
    add("empty", "F32", [0, 3], np.zeros((0, 3), dtype=np.float32))
    add("u16", "U16", [2], np.array([1, 65535], dtype=np.uint16), f32=False)
    return out


def assemble(tensors, metadata, key_order=None, pad=None, separators=(", ", ": "),
             ensure_ascii=True):
    """Lay tensors out in the given order; JSON keys in key_order (names,
    with "__metadata__" where the metadata goes). pad: spaces after the JSON
    (None: to a multiple of 8)."""
    infos, blobs, offset = {}, [], 0
    for name, dtype, shape, arr, _ in tensors:
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        infos[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    keys = key_order or ((["__metadata__"] if metadata else []) + [t[0] for t in tensors])
    header = {k: (metadata if k == "__metadata__" else infos[k]) for k in keys}
    text = json.dumps(header, separators=separators, ensure_ascii=ensure_ascii).encode("utf-8")
    text += b" " * (pad if pad is not None else (-len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def encode_value(v):
    v = float(v)
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    print(f"{path}: {len(data)} bytes")


def main():
    os.makedirs(FIX, exist_ok=True)
    os.makedirs(SEEDS, exist_ok=True)

    tensors = mixed_tensors()
    meta = {"format": "pt", "note": "made by make_safetensors.py", "greek": "\u03bd\u03b1\u03b9 \u2713"}
    keys = [t[0] for t in reversed(tensors)]
    keys.insert(4, "__metadata__")
    mixed = assemble(tensors, meta, key_order=keys, pad=3)
    write(f"{FIX}/st_mixed.safetensors", mixed)
    expected = {
        "metadata": meta,
        "tensors": [
            {"name": name, "dtype": dtype, "shape": shape,
             "values": None if vals is None else [encode_value(v) for v in vals]}
            for name, dtype, shape, _, vals in tensors
        ],
    }
    with open(f"{FIX}/st_mixed.json", "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")

    small = [
        ("b", "F16", [3], np.array([0.5, 1.5, -1.0], dtype=np.float16), None),
        ("w", "F32", [2, 3], np.arange(1, 7, dtype=np.float32).reshape(2, 3), None),
        ("steps", "I64", [], np.array(1000, dtype=np.int64), None),
        ("ids", "U16", [4], np.array([1, 2, 3, 4], dtype=np.uint16), None),
    ]
    small_bytes = assemble(small, {"format": "pt", "arch": "mlp"})
    write(f"{FIX}/st_small.safetensors", small_bytes)

    # The writer's golden file: tensors sorted by name, metadata first with
    # sorted keys, compact JSON without ASCII escaping, spaces to 8 bytes.
    written = [
        ("a.weight", "F32", [2, 2], np.arange(4, dtype=np.float32) * 0.25 - 1, None),
        ("b", "F32", [3], np.array([0.5, -1.0, 2.0], dtype=np.float32), None),
        ("e", "F32", [0], np.zeros(0, dtype=np.float32), None),
        ('odd "name"\t/\u00fc', "F32", [1, 2], np.array([1e-3, -7.0], dtype=np.float32), None),
        ("z", "F32", [], np.array(42.0, dtype=np.float32), None),
    ]
    written.sort(key=lambda t: t[0])
    wmeta = {"arch": "mlp", "note": "line1\nline2", "seed": "7"}
    golden = assemble(written, dict(sorted(wmeta.items())), separators=(",", ":"),
                      ensure_ascii=False)
    write(f"{FIX}/st_written.safetensors", golden)

    # Seeds for the fuzzer: the fixtures, the smallest valid file, and a
    # file whose offsets leave a gap.
    write(f"{SEEDS}/mixed.safetensors", mixed)
    write(f"{SEEDS}/small.safetensors", small_bytes)
    write(f"{SEEDS}/written.safetensors", golden)
    write(f"{SEEDS}/empty_header.safetensors", struct.pack("<Q", 8) + b"{}      ")
    gap = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    write(f"{SEEDS}/gap.safetensors", struct.pack("<Q", len(gap)) + gap + bytes(8))


if __name__ == "__main__":
    main()
