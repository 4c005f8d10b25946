"""Re-reads a GGUF file with llama.cpp's own Python reader (the `gguf` package from PyPI) and dumps
what it sees, so the Rust tests can compare it with Pareto's reader: for every tensor its name,
ggml type id, dims (ne0 first) and the values dequantized by gguf.quants (raw little-endian f32
in <out>/<index>.f32); plus the scalar metadata and the tokenizer arrays.

usage: python3 gguf_check.py <file.gguf> <out-dir>
"""

import json
import os
import sys

import numpy as np
import gguf
from gguf.quants import dequantize


def scalar(field):
    types = field.types
    if not types or types[0] == gguf.GGUFValueType.ARRAY:
        return None
    return field.contents()


def plain(o):
    """numpy scalars and arrays → JSON."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (bytes, bytearray)):
        return o.decode("utf-8", "replace")
    return str(o)


def main():
    path, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    reader = gguf.GGUFReader(path)
    tensors = []
    for i, t in enumerate(reader.tensors):
        values = dequantize(t.data, t.tensor_type).astype("<f4").reshape(-1)
        values.tofile(os.path.join(out, f"{i}.f32"))
        tensors.append({
            "name": t.name,
            "type": int(t.tensor_type),
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset),
            "file": f"{i}.f32",
        })
    meta = {}
    arrays = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        v = scalar(field)
        if v is not None:
            meta[key] = v
        elif key.startswith("tokenizer.ggml."):
            arrays[key] = field.contents()
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"tensors": tensors, "metadata": meta, "arrays": arrays, "alignment": reader.alignment}, f, default=plain)


if __name__ == "__main__":
    main()
