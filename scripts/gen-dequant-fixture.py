#!/usr/bin/env python3
"""Writes crates/formats/tests/data/ggml_dequant.json: random blocks of every ggml type Pareto
decodes and the sha256 of gguf-py's `gguf.quants.dequantize` of them (f32 little-endian), the
reference the `dequantize_matches_gguf_py` test holds Pareto's decoders to.
With `--gguf FILE OUT`, writes instead the sha256 of gguf-py's dequantization of every tensor of a
real GGUF (f32 little-endian, storage order), for `smollm2_dequantizes_like_gguf_py`.
Run with a Python that has `gguf` and `numpy` (pip install gguf)."""
import hashlib, json, sys
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

# (type, bytes per block, byte offsets of the block's f16 scale fields)
TYPES = [
    (T.Q4_0, 18, [0]), (T.Q4_1, 20, [0, 2]), (T.Q5_0, 22, [0]), (T.Q5_1, 24, [0, 2]),
    (T.Q8_0, 34, [0]), (T.Q2_K, 84, [80, 82]), (T.Q3_K, 110, [108]), (T.Q4_K, 144, [0, 2]),
    (T.Q5_K, 176, [0, 2]), (T.Q6_K, 210, [208]),
]
if len(sys.argv) == 4 and sys.argv[1] == "--gguf":
    from gguf import GGUFReader
    reader = GGUFReader(sys.argv[2])
    sums = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype("<f4")
        sums[t.name] = hashlib.sha256(values.tobytes()).hexdigest()
    json.dump(sums, open(sys.argv[3], "w"), indent=0, sort_keys=True)
    sys.exit(0)

BLOCKS = 6
rng = np.random.default_rng(20261206)
out = {}
for ty, size, f16_at in TYPES:
    raw = rng.integers(0, 256, size=(BLOCKS, size), dtype=np.uint8)
    for at in f16_at:
        # Finite scales of either sign (a random bit pattern can be Inf/NaN).
        raw[:, at:at + 2] = (rng.standard_normal(BLOCKS) * 0.02).astype(np.float16).view(np.uint8).reshape(BLOCKS, 2)
    values = dequantize(raw.reshape(-1), ty).astype("<f4")
    out[ty.name] = {
        "ggml_type": int(ty),
        "blocks_hex": raw.tobytes().hex(),
        "dequantized_sha256": hashlib.sha256(values.tobytes()).hexdigest(),
        "first_values": [float(v) for v in values.reshape(-1)[:4]],
    }
json.dump(out, open(sys.argv[1] if len(sys.argv) > 1 else "crates/formats/tests/data/ggml_dequant.json", "w"), indent=1)
