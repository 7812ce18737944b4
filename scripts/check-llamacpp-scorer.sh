#!/usr/bin/env bash
# Lantern's OpenAI-compatible Shapley scorer against an independent server, llama-cpp-python's
# (run by hand: building llama-cpp-python takes ~10 minutes, too long for CI; see
# /work/shared/notes.md or README for the build flags that work on this machine's Xeon).
# Starts `python -m llama_cpp.server` on 127.0.0.1 with the SmolLM2 GGUF, then runs the ignored
# test `llamacpp_server_with_the_openai_scorer` (tests/serve.rs), which prints what the scorer
# found (list prompts, max_tokens 0, whether the echoed log-probabilities are the model's).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LANTERN_MODEL_DIR="${LANTERN_MODEL_DIR:-$PWD/models}"
python3 -c "import llama_cpp" 2>/dev/null || {
  echo "llama-cpp-python is not installed: CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON\" pip install 'llama-cpp-python[server]==0.3.36'" >&2
  exit 1
}
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp)"
python3 -m llama_cpp.server --model "$LANTERN_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --host 127.0.0.1 --port "$port" --n_threads 2 --logits_all true >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 1
done
echo "== llama-cpp-python $(python3 -c 'import llama_cpp; print(llama_cpp.__version__)') on port $port"
echo "== what it does with the scorer's requests (raw)"
for body in \
  '{"prompt": ["The capital of France is Paris", "Hi there"], "echo": true, "logprobs": 1, "max_tokens": 0, "temperature": 0}' \
  '{"prompt": "The capital of France is Paris", "echo": true, "logprobs": 1, "max_tokens": 0, "temperature": 0}' \
  '{"prompt": "The capital of France is", "logprobs": 1, "max_tokens": 1, "temperature": 0}'; do
  echo "-> $body"
  curl -s -w '\n   HTTP %{http_code}\n' -H 'Content-Type: application/json' -d "$body" \
    "http://127.0.0.1:$port/v1/completions" | cut -c1-600
done
echo "== the scorer"
LLAMACPP_URL="http://127.0.0.1:$port" RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-1}" \
  cargo test -p lantern-serve --test serve -- --ignored llamacpp --nocapture
