#!/usr/bin/env python3
"""Extracts Kubernetes' strict JSON schema of batch/v1 Job, with only the definitions it reaches,
from the kubernetes-validate wheel (schemas generated from Kubernetes' OpenAPI spec), into
assets/schema/. Descriptions are dropped: the tests need the structure, not the prose.

    pip download --no-deps kubernetes-validate==1.37.0 -d /tmp/kv
    python3 scripts/k8s-job-schema.py /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl
"""
import json
import sys
import zipfile

VERSION = "v1.33.0-local-strict"
PREFIX = "/api/_definitions.json#/$defs/"


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def without_descriptions(node):
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def main(wheel):
    base = f"kubernetes_validate/kubernetes-json-schema/{VERSION}/"
    with zipfile.ZipFile(wheel) as z:
        defs = json.loads(z.read(base + "_definitions.json"))["$defs"]
        root = json.loads(z.read(base + "job-batch-v1.json"))
    needed, todo = set(), list(refs(root))
    while todo:
        name = todo.pop().rsplit("/", 1)[-1]
        if name not in needed:
            needed.add(name)
            todo.extend(refs(defs[name]))
    schema = without_descriptions(root)
    schema["$defs"] = {k: without_descriptions(defs[k]) for k in sorted(needed)}
    text = json.dumps(schema, sort_keys=True, separators=(",", ":")).replace(PREFIX, "#/$defs/")
    out = "assets/schema/kubernetes-v1.33-job-batch-v1.strict.json"
    with open(out, "w") as f:
        f.write(text)
    print(f"{out}: {len(needed)} definitions, {len(text)} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
