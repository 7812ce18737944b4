#!/usr/bin/env bash
# A real Slurm test: brings up a one-node Slurm cluster on localhost (Debian's slurm-wlm and
# munge, installed with apt-get when missing, configured in a temporary folder with their own
# ports, key and socket), submits a 4-task array for an activation patching sweep and for exact
# Shapley on the tiny GPT-2 fixture with scripts/slurm/submit.sh, waits for the merge steps, and
# checks that each merged result is byte-identical to the single-process `--json` output.
# Every daemon it starts is stopped on exit, whatever happens.
#
# Needs root (to install packages and run the daemons). Skips, loudly, only when the packages
# are missing and apt-get cannot reach the archive; any other failure fails.
# LANTERN: the binary to test (default target/debug/lantern, built if missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

skip() {
  {
    echo "################################################################"
    echo "## SLURM TEST SKIPPED: $*"
    echo "################################################################"
  } >&2
  exit 0
}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  [[ "$(id -u)" == 0 ]] || { echo "error: slurm-wlm and munge are not installed and this is not root: install them (apt-get install slurm-wlm munge) or run as root" >&2; exit 1; }
  echo "== installing slurm-wlm and munge (apt-get)"
  log="$(mktemp)"
  # Debian's policy-rc.d (exit 101) keeps the packages' own services from starting: this test
  # runs its daemons itself and must leave nothing running.
  policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  fi
  installed=0
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge) >"$log" 2>&1 || installed=$?
  [[ -z "$policy" ]] || rm -f "$policy"
  if [[ $installed -ne 0 ]]; then
    if grep -qiE "could not resolve|temporary failure|failed to fetch|unable to connect|connection (failed|refused|timed out)|network is unreachable" "$log"; then
      tail -5 "$log" >&2
      skip "apt-get cannot reach the package archive, so slurm-wlm and munge cannot be installed"
    fi
    cat "$log" >&2
    echo "error: installing slurm-wlm and munge failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

lantern="${LANTERN:-$root/target/debug/lantern}"
[[ -x "$lantern" ]] || cargo build -q -p lantern-cli
lantern="$(cd "$(dirname "$lantern")" && pwd)/$(basename "$lantern")"

work="$(mktemp -d /tmp/lantern-slurm.XXXXXX)"
chmod 755 "$work"
cleanup() {
  local rc=$?
  set +e
  if [[ -f "$work/slurm.conf" ]]; then
    SLURM_CONF="$work/slurm.conf" scancel --quiet --user="$(id -un)" 2>/dev/null
  fi
  for d in slurmd slurmctld munged; do
    if [[ -s "$work/$d.pid" ]]; then
      pid="$(cat "$work/$d.pid")"
      kill "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
    fi
  done
  if [[ $rc -ne 0 ]]; then
    echo "== Slurm test failed; logs:" >&2
    tail -n 20 "$work"/*.log "$work"/parts/*.log >&2 2>/dev/null
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'echo "error: line $LINENO: \`$BASH_COMMAND\` failed" >&2' ERR
trap 'exit 130' INT TERM

host="$(hostname -s)"
cpus="$(nproc)"
# Ports of our own, so that a Slurm already running on this machine is left alone.
base=$((20000 + RANDOM % 20000))
mkdir -p "$work/state" "$work/spool" "$work/parts"
head -c 1024 /dev/urandom >"$work/munge.key"
chmod 400 "$work/munge.key"
cat >"$work/slurm.conf" <<CONF
ClusterName=lantern-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/munge
AuthInfo=socket=$work/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"

echo "== starting munged, slurmctld and slurmd ($host, $cpus CPUs, ports $base-$((base + 1)))"
munged --force --key-file="$work/munge.key" --socket="$work/munge.sock" \
  --pid-file="$work/munged.pid" --log-file="$work/munged.log" --seed-file="$work/munge.seed"
slurmctld -c -f "$work/slurm.conf"
slurmd -f "$work/slurm.conf" -N "$host"
for i in $(seq 120); do
  state="$(sinfo -h -o %t 2>/dev/null || true)"
  [[ "$state" == idle ]] && break
  [[ $i == 120 ]] && { echo "error: the node did not come up (state \`$state\`)" >&2; exit 1; }
  sleep 0.5
done

model="$root/tests/fixtures/gpt2"
printf '%s' '{{a: Hello there.}}{{b: The weather is fine.}}{{c: We like tea.}}{{d: It is late.}}{{e: Go on.}} The answer is' >"$work/template.txt"
patch_args=("$model" --clean "Hello there" --corrupted "Jello there" --target " a" --versus " b" --batch-size 2)
shapley_args=("$model" --template "$work/template.txt" --target " a" --method exact --coalitions-per-call 4)

export LANTERN="$lantern" RAYON_NUM_THREADS=1
ids=()
ids+=($(scripts/slurm/submit.sh patch 4 "$work/parts" "$work/patch-merged.json" "${patch_args[@]}"))
ids+=($(scripts/slurm/submit.sh shapley 4 "$work/parts" "$work/shapley-merged.json" "${shapley_args[@]}"))
echo "== submitted jobs ${ids[*]} (arrays of 4 tasks and their merges)"

# The single-process results, while Slurm works.
"$lantern" patch "${patch_args[@]}" --quiet --json >"$work/patch-single.json" 2>/dev/null
"$lantern" shapley "${shapley_args[@]}" --quiet --json >"$work/shapley-single.json"

for i in $(seq 240); do
  left="$(squeue -h -j "$(IFS=,; echo "${ids[*]}")" 2>/dev/null | wc -l)"
  [[ "$left" == 0 ]] && break
  [[ $i == 240 ]] && { echo "error: jobs still queued after 120 s:" >&2; squeue >&2; exit 1; }
  sleep 0.5
done
for id in "${ids[@]}"; do
  state="$(scontrol show job "$id" | grep -o 'JobState=[A-Z_]*' | sort -u | tr '\n' ' ')"
  [[ "$state" == "JobState=COMPLETED " ]] || { echo "error: job $id ended as $state" >&2; exit 1; }
done
for name in patch shapley; do
  n="$(ls "$work/parts/$name"-[0-9].jsonl | wc -l)"
  [[ "$n" == 4 ]] || { echo "error: $n $name part files, not 4" >&2; exit 1; }
  if ! cmp "$work/$name-single.json" "$work/$name-merged.json"; then
    echo "error: the merged $name result differs from the single-process one" >&2
    diff "$work/$name-single.json" "$work/$name-merged.json" | head -20 >&2
    exit 1
  fi
  echo "== $name: 4 Slurm tasks merged = single process, byte for byte"
done
