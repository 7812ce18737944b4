#!/usr/bin/env bash
# By hand (not CI): how sharded sweeps scale on this machine. Prints a Markdown table of
#  1. an activation patching sweep (layer x position grid) on SmolLM2-135M vs prompt length,
#  2. exact Shapley on SmolLM2-135M vs number of players,
#  3. one sweep split into 1, 2 and 4 shards run at once (1 thread each), wall time to merge.
# LANTERN: the binary (default target/debug/lantern); MODEL: default models/SmolLM2-135M-Instruct.Q4_1.gguf.
# Run under `nice -n 10`; MAX_PLAYERS (default 10) caps part 2.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
lantern="${LANTERN:-$root/target/debug/lantern}"
model="${MODEL:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-1}"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, RAYON_NUM_THREADS=$RAYON_NUM_THREADS, load $(cut -d' ' -f1-3 /proc/loadavg)"

# Prompts of 4·k words: "A b c d A b c d ..." vs one changed first word.
words() { local n=$1 s=""; for ((i = 0; i < n; i++)); do s+=" w$((i % 7))"; done; echo "$s"; }
echo
echo "| sweep | cells (layers x positions) | seconds |"
echo "|---|---|---|"
for n in ${PATCH_WORDS:-2 4 8 16}; do
  clean="Paris$(words "$n")" corrupted="Rome$(words "$n")"
  t0=$(now)
  "$lantern" patch "$model" --clean "$clean" --corrupted "$corrupted" --target " a" --versus " b" \
    --metric logit_diff --quiet --json >"$work/p.json" 2>/dev/null
  t1=$(now)
  cells=$(python3 -c "import json; r = json.load(open('$work/p.json'))['result']; print(f\"{len(r['row_labels'])} x {len(r['col_labels'])} = {r['patches']}\")")
  echo "| patch layer_pos | $cells | $(secs "$t0" "$t1") |"
done

echo
echo "| Shapley exact | players | coalitions | seconds |"
echo "|---|---|---|---|"
for n in $(seq 2 2 "${MAX_PLAYERS:-10}"); do
  t=""; for ((i = 0; i < n; i++)); do t+="{{p$i: Fact $i is true.}}"; done
  printf '%s Answer:' "$t" >"$work/t.txt"
  t0=$(now)
  "$lantern" shapley "$model" --template "$work/t.txt" --target " yes" --method exact --quiet --json >/dev/null
  t1=$(now)
  echo "| exact | $n | $((1 << n)) | $(secs "$t0" "$t1") |"
done

echo
echo "| shards at once | seconds (all shards + merge) | speed-up |"
echo "|---|---|---|"
n=${SPEEDUP_PLAYERS:-10}
t=""; for ((i = 0; i < n; i++)); do t+="{{p$i: Fact $i is true.}}"; done
printf '%s Answer:' "$t" >"$work/t.txt"
args=(shapley "$model" --template "$work/t.txt" --target " yes" --method exact --coalitions-per-call 32 --quiet)
"$lantern" "${args[@]}" --json >"$work/single.json"
base=""
for shards in 1 2 4; do
  rm -f "$work"/part-*.jsonl
  t0=$(now)
  pids=()
  for ((i = 0; i < shards; i++)); do
    "$lantern" "${args[@]}" --shard "$i/$shards" --out "$work/part-$i.jsonl" 2>/dev/null &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  "$lantern" merge "$work"/part-*.jsonl --json >"$work/merged.json"
  t1=$(now)
  cmp -s "$work/single.json" "$work/merged.json" || { echo "error: $shards shards differ from one run" >&2; exit 1; }
  s=$(secs "$t0" "$t1"); base="${base:-$s}"
  echo "| $shards | $s | $(awk -v a="$base" -v b="$s" 'BEGIN { printf "%.2fx", a / b }') |"
done
