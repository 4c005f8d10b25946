#!/usr/bin/env python3
"""Side-by-side reference run: llm-compressor's GPTQModifier (or AWQModifier, WandaPruningModifier, SparseGPTModifier) on the CPU, on the same model,
calibration tokens and format as `pareto compress --calibration`, written as a dense (decompressed)
safetensors folder so `pareto eval` scores both artifacts with the same code.

Usage: bench-gptq-llmcompressor.py MODEL TEXT OUT [--method gptq|awq|wanda|sparsegpt] [--group 32] [--windows 128]
       [--window 512] [--skip-chars 65536] [--threads 2] [--asym]
Needs torch, transformers and llmcompressor (see BENCHMARKS.md for the versions measured); not run in CI.
"""
import argparse
import json
import os
import shutil
import time

import torch
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.pruning import WandaPruningModifier
from llmcompressor.modifiers.pruning.sparsegpt import SparseGPTModifier
from llmcompressor.modifiers.transform.awq import AWQModifier
from llmcompressor.modifiers.transform.awq.mappings import AWQMapping
from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
from compressed_tensors.quantization.lifecycle.forward import fake_quantize
from llmcompressor.pipelines.cache import IntermediatesCache
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("out")
    ap.add_argument("--group", type=int, default=32)
    ap.add_argument("--windows", type=int, default=128)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--skip-chars", type=int, default=65536)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ignore", default="lm_head,re:.*down_proj")
    ap.add_argument("--method", choices=["gptq", "awq", "wanda", "sparsegpt"], default="gptq")
    ap.add_argument("--asym", action="store_true", help="int4 with zero points (AWQ's usual scheme)")
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--mask", default="0:0", help="Wanda / SparseGPT mask structure: 0:0 unstructured, 2:4")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if not torch.cuda.is_available():
        # AWQ pins its cached activations for a GPU copy; pinning needs a CUDA driver.
        IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None

    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(a.model)
    text = open(a.text, encoding="utf-8").read()[a.skip_chars:]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    per = a.window - 1
    n = min(a.windows, len(ids) // per)
    bos = model.config.bos_token_id
    rows = [[bos] + ids[i * per:(i + 1) * per] for i in range(n)]
    ds = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]})

    scheme = {
        "group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 4, "type": "int", "symmetric": not a.asym, "strategy": "group",
                        "group_size": a.group, "actorder": "static" if a.method == "gptq" else None},
        }
    }
    if a.method == "gptq":
        recipe = GPTQModifier(config_groups=scheme, ignore=a.ignore.split(","), dampening_frac=0.01, block_size=128)
    elif a.method == "awq":
        # LLaMA's mappings; up_proj -> down_proj only when down_proj is quantized (else AWQ has no
        # quantization scheme to search it with).
        mappings = [
            AWQMapping("re:.*input_layernorm$", ["re:.*q_proj$", "re:.*k_proj$", "re:.*v_proj$"]),
            AWQMapping("re:.*v_proj$", ["re:.*o_proj$"]),
            AWQMapping("re:.*post_attention_layernorm$", ["re:.*gate_proj$", "re:.*up_proj$"]),
        ]
        if "down_proj" not in a.ignore:
            mappings.append(AWQMapping("re:.*up_proj$", ["re:.*down_proj$"]))
        recipe = [AWQModifier(mappings=mappings, duo_scaling=True, n_grid=20),
                  QuantizationModifier(config_groups=scheme, ignore=a.ignore.split(","))]
    elif a.method == "sparsegpt":
        recipe = SparseGPTModifier(sparsity=a.sparsity, mask_structure=a.mask, targets=["Linear"],
                                   ignore=a.ignore.split(","), block_size=128, dampening_frac=0.01)
    else:
        recipe = WandaPruningModifier(sparsity=a.sparsity, mask_structure=a.mask, targets=["Linear"],
                                      ignore=a.ignore.split(","))
    t = time.perf_counter()
    oneshot(model=model, dataset=ds, recipe=recipe, max_seq_length=a.window, num_calibration_samples=n)
    seconds = time.perf_counter() - t
    if a.method == "awq":
        # AWQ leaves scaled float weights with quantization parameters beside them; write what the
        # checkpoint decodes to.
        with torch.no_grad():
            for _, m in model.named_modules():
                args = getattr(getattr(m, "quantization_scheme", None), "weights", None)
                if args is not None and hasattr(m, "weight_scale"):
                    m.weight.data = fake_quantize(m.weight, m.weight_scale, m.weight_zero_point, args)
    # The quantized-then-decoded weights GPTQ left in the modules, under the source's tensor names,
    # beside the source's own config and tokenizer: a plain dense folder any reader scores.
    os.makedirs(a.out, exist_ok=True)
    names = safe_open(os.path.join(a.model, "model.safetensors"), "pt").keys()
    state = model.state_dict()
    save_file({k: state[k].detach().to(torch.float32).contiguous() for k in names},
              os.path.join(a.out, "model.safetensors"))
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(a.model, f)):
            shutil.copy(os.path.join(a.model, f), a.out)
    print(json.dumps({"tool": "llmcompressor", "method": a.method, "windows": n, "window": a.window, "group": a.group,
                      "calibrate_and_solve_s": round(seconds, 3), "threads": a.threads}))


if __name__ == "__main__":
    main()
