#!/usr/bin/env bash
# Assemble a CUDA 13.0 toolkit from NVIDIA's PyPI wheels under .cuda/, so the
# `cuda` feature can be BUILT on a machine with no GPU and no CUDA install.
#
#   bash scripts/cuda-toolchain.sh     # set up (idempotent), print the env to export
#   source scripts/cuda-toolchain.sh   # set up and export it into this shell
#
# Needs: python3 + pip (downloads ~680 MB once, ~1.2 GB unpacked), gcc/g++
# (nvcc's host compiler, and to build the libcuda link stub).
#
# Why 13.0: the GPU machines run driver 580 (CUDA 13.0). PTX from a newer nvcc
# would not load there, and 13.0 matches the libcublas.so.13 & co. that their
# image already ships. cudarc 0.19 knows CUDA versions up to 13.4.

_cuda_main() {
  local repo root wheels stamp w name ver
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  wheels="$repo/.cuda/wheels"
  root="$repo/.cuda/cuda-13.0"

  # name==version; all unpack into nvidia/cu13/{bin,include,lib,nvvm}.
  local pins=(
    nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary, nvlink
    nvidia-nvvm==13.0.88          # cicc (nvcc's device front end) + libdevice
    nvidia-cuda-crt==13.0.88      # include/crt/*: host_config.h etc. that nvcc injects
    nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, cuda_fp16/bf16/fp8.h, cuda.h, libcudart (libmoe.a needs it)
    nvidia-cuda-cccl==13.0.85     # include/cccl (<cuda/std/...>), on nvcc's default include path
    nvidia-cuda-nvrtc==13.0.88    # libnvrtc: cudarc passes -lnvrtc (unused at run time)
    nvidia-cublas==13.1.0.3       # libcublas + libcublasLt (linked; Lt also loaded by cublas); CUDA 13.0 U2's
    nvidia-curand==10.4.0.35      # libcurand (linked)
  )

  python3 -m pip --version >/dev/null 2>&1 ||
    { echo "cuda-toolchain: needs pip (Debian: apt-get install python3-pip)" >&2; return 1; }
  mkdir -p "$wheels"
  for w in "${pins[@]}"; do
    name="${w%%==*}" ver="${w##*==}"
    compgen -G "$wheels/${name//-/_}-$ver-*.whl" >/dev/null && continue
    python3 -m pip download -q --no-deps --only-binary=:all: \
      --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux2010_x86_64 -d "$wheels" "$w" || return 1
  done

  stamp="$root/.pins"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]]; then
    rm -rf "$root" "$repo/.cuda/unpack" && mkdir -p "$repo/.cuda/unpack"
    # Plain zipfile extraction, keeping the exec bits (no unzip needed).
    python3 - "$repo/.cuda/unpack" "$wheels" "${pins[@]}" <<'EOF' || return 1
import glob, os, sys, zipfile
dest, wheels, pins = sys.argv[1], sys.argv[2], sys.argv[3:]
for pin in pins:
    name, ver = pin.split("==")
    (whl,) = glob.glob(f"{wheels}/{name.replace('-', '_')}-{ver}-*.whl")
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            if info.filename.startswith("nvidia/cu13/") and not info.is_dir():
                path = z.extract(info, dest)
                if (info.external_attr >> 16) & 0o111:
                    os.chmod(path, 0o755)
EOF
    mv "$repo/.cuda/unpack/nvidia/cu13" "$root" && rm -rf "$repo/.cuda/unpack"
    (
      cd "$root" || exit 1
      # Usual toolkit names: cudaforge reads lib64, the linker wants unversioned .so.
      ln -sfn lib lib64
      for so in lib/*.so.*; do
        case "$so" in *.alt.so*|*builtins*) continue ;; esac
        ln -sfn "$(basename "$so")" "${so%%.so.*}.so"
      done
      # libcuda is the driver; no wheel has it. A stub exporting every cu*
      # entry point named in cuda.h satisfies the linker (soname libcuda.so.1,
      # so the real driver is loaded at run time). It lives in lib/stubs,
      # which only the linker searches.
      mkdir -p lib/stubs
      grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b' include/cuda.h | sort -u |
        sed 's/.*/void &(void) {}/' >lib/stubs/libcuda.c
      gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o lib/stubs/libcuda.so lib/stubs/libcuda.c
    ) || return 1
    echo "${pins[*]}" >"$stamp"
  fi

  # CUDA_HOME: cudarc's link search (lib, lib/stubs) and cudaforge's fallback.
  # PATH: cudarc runs `nvcc --version` from PATH to pick its CUDA API version.
  # CUDA_COMPUTE_CAP: candle-kernels targets it instead of asking nvidia-smi (90 = H100/H200 -> sm_90a).
  export CUDA_HOME="$root" NVCC="$root/bin/nvcc"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
  case ":$PATH:" in *":$root/bin:"*) ;; *) export PATH="$root/bin:$PATH" ;; esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  _cuda_main
  echo "export CUDA_HOME='$CUDA_HOME' NVCC='$NVCC' CUDA_COMPUTE_CAP='$CUDA_COMPUTE_CAP' PATH=\"$CUDA_HOME/bin:\$PATH\""
else
  _cuda_main
fi
