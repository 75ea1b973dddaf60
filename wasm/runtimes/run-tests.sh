#!/bin/sh
# The npm package under Deno, Bun and workerd, imported by name as users do (node_modules/popwire
# links to wasm/), against the Dovecot named by POPWIRE_DOVECOT (else each suite starts one),
# then the example Worker's local run. Needs `wasm/build.sh` and `tests/install-deps.sh jsruntimes`.
set -eu
cd "$(dirname "$0")"
bin=node_modules/.bin

echo "-- Deno $($bin/deno --version | head -1 | cut -d' ' -f2)"
# --no-check: through the file: link Deno type-checks the package's .js as local modules, not
# its declarations. Installed from `npm pack`'s tarball (a copy), `deno check` of a TypeScript
# file importing Client passes (checked by hand, 2026-12-04).
$bin/deno test -A --no-check deno.test.mjs

echo "-- Bun $($bin/bun --version)"
$bin/bun test ./bun.test.mjs

# wrangler and Miniflare need Node >= 22.12; node_modules/.bin/node is Node 22 from npm.
workerd=$($bin/node -p 'require("./node_modules/miniflare/node_modules/workerd/package.json").version')
echo "-- workerd $workerd (Miniflare's), driven by Node $($bin/node --version)"
$bin/node --test workerd.test.mjs
echo "-- the example Worker (examples/worker) under workerd"
$bin/node --test example-worker.test.mjs
