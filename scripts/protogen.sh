#!/usr/bin/env bash
# Regenerates gen/ from proto/ with the generators pinned in go.mod.
# Usage: go generate ./gen   (or: bash scripts/protogen.sh [--check])
set -euo pipefail
cd "$(dirname "$0")/.."

# google/api/*.proto come from a Go module at generation time; the generated
# Go for them is google.golang.org/genproto (see buf.gen.yaml).
googleapis=$(go mod download -json github.com/gogo/googleapis@v1.4.1 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
deps=.build/protodeps/google/api
rm -rf .build/protodeps && mkdir -p "$deps"
cp "$googleapis"/google/api/{annotations,http,httpbody}.proto "$deps"/
chmod -R u+w .build/protodeps

buf() { go tool buf "$@"; }
buf lint
if [[ "${1:-}" == "--check" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -r gen "$tmp/before"
fi
find gen -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' | xargs -r rm -f
buf generate
if [[ "${1:-}" == "--check" ]]; then
  if ! diff -r "$tmp/before" gen >/dev/null; then
    diff -r "$tmp/before" gen | head -40
    echo "protogen: gen/ is stale; run 'go generate ./gen' and commit" >&2
    exit 1
  fi
  echo "protogen: gen/ is fresh"
fi
