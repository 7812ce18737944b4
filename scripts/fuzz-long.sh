#!/usr/bin/env bash
# The long fuzz run (issue #13): every harness of tests/fuzz, round after round with a new seed,
# until SECONDS_TOTAL have passed (default 3600). Prints cases/s per target and round; after an
# abort the input that caused it is in target/fuzz-inputs/last.<target>.
#
#   scripts/fuzz-long.sh                 # one hour, 20,000 cases per target per round
#   scripts/fuzz-long.sh 300 5000        # five minutes, 5,000 cases per round
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
total=${1:-3600}
cases=${2:-20000}
targets=(
    model_formats::gguf
    model_formats::safetensors
    model_formats::safetensors_index
    model_formats::config_json
    model_formats::tokenizer_json
    formats::experiment_toml
    formats::shapley_template
    formats::causal_csv
    formats::states_json
    specs::hook_names
    specs::intervention_spec
)
export RAYON_NUM_THREADS=1
mkdir -p target/fuzz-inputs
cargo test -q -p lantern-experiments --test fuzz --no-run
start=$(date +%s)
round=0
declare -A done_cases
while (( $(date +%s) - start < total )); do
    seed=$(( $(date +%s) + round ))
    for t in "${targets[@]}"; do
        (( $(date +%s) - start < total )) || break
        t0=$(date +%s.%N)
        if ! LANTERN_FUZZ_CASES=$cases LANTERN_FUZZ_SEED=$seed \
            LANTERN_FUZZ_SAVE="$PWD/target/fuzz-inputs/last" \
            cargo test -q -p lantern-experiments --test fuzz -- --exact "$t" >target/fuzz-inputs/log 2>&1; then
            cat target/fuzz-inputs/log
            echo "FAILED: $t (seed $seed); rerun with LANTERN_FUZZ_SEED=$seed LANTERN_FUZZ_CASES=$cases"
            exit 1
        fi
        t1=$(date +%s.%N)
        done_cases[$t]=$(( ${done_cases[$t]:-0} + cases ))
        awk -v r="$round" -v s="$seed" -v t="$t" -v n="$cases" -v a="$t0" -v b="$t1" \
            'BEGIN { printf "round %d seed %d %-34s %7d cases %7.1f s %8.1f cases/s\n", r, s, t, n, b - a, n / (b - a) }'
    done
    round=$(( round + 1 ))
done
echo "total after $(( $(date +%s) - start )) s:"
for t in "${targets[@]}"; do
    printf '  %-34s %9d cases\n' "$t" "${done_cases[$t]:-0}"
done
