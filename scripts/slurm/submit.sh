#!/usr/bin/env bash
# Submits a sharded sweep and its merge step:
#
#   scripts/slurm/submit.sh patch|shapley|scale|sessions TASKS PARTS RESULT [lantern arguments...]
#
# TASKS array tasks write PARTS/NAME-I.jsonl; a merge job that runs after all of them succeed
# writes RESULT. Prints the array's and the merge's job ids. LANTERN (the binary) and any
# sbatch options in SBATCH_ARGS are passed on.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 4 ]]; then
  sed -n 2,9p "${BASH_SOURCE[0]}" >&2
  exit 2
fi
name="$1" tasks="$2" parts="$3" result="$4"
shift 4
case "$name" in
  patch | shapley | scale | sessions) ;;
  *) echo "error: unknown sweep \`$name\` (patch, shapley, scale, sessions)" >&2; exit 2 ;;
esac
[[ "$tasks" =~ ^[1-9][0-9]*$ ]] || { echo "error: TASKS must be a positive whole number, got \`$tasks\`" >&2; exit 2; }
mkdir -p "$parts"
parts="$(cd "$parts" && pwd)"
export PARTS="$parts" NAME="$name" RESULT="$result"
# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array="0-$((tasks - 1))" \
  --output="$parts/$name-%A_%a.log" "$here/$name.sbatch" "$@")
array="${array%%;*}"
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --output="$parts/$name-merge-%j.log" "$here/merge.sbatch")
echo "$array ${merge%%;*}"
