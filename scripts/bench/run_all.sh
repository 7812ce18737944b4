#!/usr/bin/env bash
# Lantern against the Python reference (PyTorch + HF transformers), same machine, same run, same
# model (SmolLM2-135M-Instruct, f32, CPU, 2 threads). Writes benches/results/<timestamp>.json.
#
#   scripts/bench/run_all.sh            # everything
#   BENCH_ONLY=patching scripts/bench/run_all.sh     # patching | shapley | forward | generate
#
# Needs the Python stack: pip install -r scripts/fixtures/requirements.txt
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export LANTERN_MODEL_DIR="${LANTERN_MODEL_DIR:-$PWD/models}"   # the benches use default_model_path()
model="$(scripts/fetch-model.sh)"
py="${PYTHON:-python3}"
export LANTERN_THREADS="${LANTERN_THREADS:-2}" RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
only="${BENCH_ONLY:-all}"
out_dir=benches/results; mkdir -p "$out_dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# BENCH_PROFILE=release for a release build; the dev profile already optimises every dependency
# (candle does the heavy lifting), and only Lantern's own crates stay unoptimised.
profile="${BENCH_PROFILE:-dev}"
cargo build -q --profile "$profile" -p lantern-cli
lantern=./target/$([[ "$profile" == dev ]] && echo debug || echo "$profile")/lantern
results="{}"
add() { results="$(echo "$results" | "$py" -c "import json,sys; d=json.load(sys.stdin); d[sys.argv[1]]=json.loads(sys.argv[2]); print(json.dumps(d))" "$1" "$2")"; }

if [[ "$only" == all || "$only" == patching ]]; then
  # Same prompts as torch_patching.py (clean/corrupted, equal length), every layer x every position.
  clean="$("$py" -c 'import sys; sys.path.insert(0,"scripts/bench"); import torch_patching as t; print(t.CLEAN)')"
  corrupt="$("$py" -c 'import sys; sys.path.insert(0,"scripts/bench"); import torch_patching as t; print(t.CORRUPT)')"
  "$lantern" patch "$model" --clean "$clean" --corrupted "$corrupt" --target " Mary" --versus " John" --hook resid_pre --grid layer_pos --metric logit_diff --json --quiet > "$tmp/lp.json" 2> "$tmp/lp.err"
  lantern_s="$(awk '$1 == "sweep_seconds" { print $2 }' "$tmp/lp.err")"   # the sweep alone, no load
  patches="$("$py" -c "import json; print(json.load(open('$tmp/lp.json'))['result']['patches'])")"
  torch_json="$("$py" scripts/bench/torch_patching.py ${TORCH_MAX_PATCHES:+--max-patches $TORCH_MAX_PATCHES})"
  torch_resume_json="$("$py" scripts/bench/torch_patching.py --mode resume)"   # the best PyTorch sweep
  add patching "{\"lantern_seconds\": $lantern_s, \"patches\": $patches, \"torch\": $torch_json, \"torch_resume\": $torch_resume_json}"
fi

if [[ "$only" == all || "$only" == shapley ]]; then
  # SHAPLEY_COMPONENTS=scripts/bench/shapley_prefix.json: the same game after a shared prefix.
  components="${SHAPLEY_COMPONENTS:-scripts/bench/shapley_components.json}"
  # The same 10 components as torch_shapley.py, as a Lantern template (players c0..c9).
  "$py" - "$tmp/components.txt" "$components" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
open(sys.argv[1], "w").write(d["prefix"] + "".join("{{c%d: %s}}" % (i, c) for i, c in enumerate(d["components"])))
PY
  target="$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["target"])' "$components")"
  start=$("$py" -c 'import time; print(time.time())')
  "$lantern" shapley "$model" --template "$tmp/components.txt" --value logprob --target "$target" --method exact --batch-size 32 --json --quiet > "$tmp/ls.json"
  end=$("$py" -c 'import time; print(time.time())')
  torch_json="$("$py" scripts/bench/torch_shapley.py "$components")"
  torch_kv_json="$("$py" scripts/bench/torch_shapley.py "$components" --prefix-kv)"
  add shapley "{\"lantern_seconds\": $("$py" -c "print($end - $start)"), \"lantern\": $(cat "$tmp/ls.json"), \"torch\": $torch_json, \"torch_prefix_kv\": $torch_kv_json}"
fi

if [[ "$only" == all || "$only" == forward ]]; then
  cargo bench -q -p lantern-engine --bench forward -- --noplot 2>/dev/null | tee "$tmp/crit.txt" >&2
  crit="$("$py" - "$tmp/crit.txt" <<'PY'
import re, sys, json
text = open(sys.argv[1]).read()
out = {}
for name, mid, unit in re.findall(r"smollm2_forward_16_tokens/(\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text):
    out[name] = float(mid) * {"ms": 1.0, "s": 1000.0, "µs": 0.001}[unit]
print(json.dumps(out))
PY
)"
  torch_json="$("$py" scripts/bench/torch_forward.py)"
  add forward "{\"lantern_ms\": $crit, \"torch\": $torch_json}"
fi

if [[ "$only" == all || "$only" == generate ]]; then
  # Decoding (issue #17): SmolLM2, prompt of 8 tokens, 128 new greedy tokens, batch 1, and the
  # prefill of 512 tokens. Lantern f32 / q8_0 / gguf (with and without a steering intervention),
  # transformers f32, llama.cpp on the same GGUF; one after another in this one run.
  new="${GEN_NEW:-128}"; reps="${GEN_REPS:-3}"
  for dtype in f32 q8_0 gguf; do
    "$lantern" bench "$model" --dtype "$dtype" --seq 8 --generate "$new" --reps "$reps" --json --quiet > "$tmp/lg_$dtype.json"
    "$lantern" bench "$model" --dtype "$dtype" --seq 512 --generate 2 --reps "$reps" --json --quiet > "$tmp/lp_$dtype.json"
  done
  torch_json="$("$py" scripts/bench/torch_generate.py --seq 8 --new "$new" --reps "$reps" --prefill 512 2>/dev/null)"
  if "$py" -c "import llama_cpp" 2>/dev/null; then
    llama_json="$("$py" scripts/bench/llamacpp_generate.py --model "$model" --seq 8 --new "$new" --reps "$reps" --prefill 512)"
  else
    llama_json='{"error": "llama_cpp is not importable (pip install llama-cpp-python; see the shared notes for build flags)"}'
  fi
  add generate "{\"lantern\": {\"f32\": $(cat "$tmp/lg_f32.json"), \"q8_0\": $(cat "$tmp/lg_q8_0.json"), \"gguf\": $(cat "$tmp/lg_gguf.json")}, \"lantern_prefill_512\": {\"f32\": $(cat "$tmp/lp_f32.json"), \"q8_0\": $(cat "$tmp/lp_q8_0.json"), \"gguf\": $(cat "$tmp/lp_gguf.json")}, \"torch\": $torch_json, \"llama_cpp\": $llama_json}"
fi

# The machine the numbers come from (they differ several-fold between CPUs) and how busy it was.
cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
flags="$(lscpu | sed -n 's/^Flags: *//p' | tr ' ' '\n' | grep -E '^(avx|avx2|fma|f16c|avx512[a-z_0-9]*|amx[a-z_0-9]*)$' | tr '\n' ' ')"
add machine "$("$py" -c 'import json,sys,os; print(json.dumps({"cpu": sys.argv[1], "flags": sys.argv[2].split(), "cpus": os.cpu_count(), "threads": int(os.environ["LANTERN_THREADS"]), "load_average": os.getloadavg()}))' "$cpu" "$flags")"

echo "$results" | "$py" -m json.tool > "$out_dir/$stamp.json"
echo "written $out_dir/$stamp.json" >&2
cat "$out_dir/$stamp.json"
