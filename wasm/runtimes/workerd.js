// Runs a Worker under workerd as a user's project would: `wrangler deploy --dry-run` bundles
// it (esbuild with the `workerd` condition; .wasm as a compiled module), then Miniflare runs the
// bundle in workerd. Needs Node >= 22.12 (wrangler's floor): run with node_modules/.bin/node.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WRANGLER = fileURLToPath(new URL('./node_modules/wrangler/bin/wrangler.js', import.meta.url));

/** Bundles the Worker of `config` (a wrangler.toml) into a temporary directory. */
export function bundle(config) {
  const out = mkdtempSync(join(tmpdir(), 'pwjs-worker-'));
  const run = spawnSync(process.execPath, [WRANGLER, 'deploy', '--dry-run', '--outdir', out, '--config', config], {
    cwd: dirname(config),
    encoding: 'utf8',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG_PATH: join(out, 'logs') },
  });
  if (run.status !== 0) throw new Error(`wrangler failed:\n${run.stdout}\n${run.stderr}`);
  return { dir: out, script: join(out, 'index.js'), remove: () => rmSync(out, { recursive: true, force: true }) };
}

/**
 * Miniflare, imported after NODE_EXTRA_CA_CERTS is set: it reads the variable once, into the
 * trusted certificates of workerd's network service (`caFile`: the test CA).
 */
export async function miniflare(caFile) {
  process.env.NODE_EXTRA_CA_CERTS = caFile;
  return (await import('miniflare')).Miniflare;
}

/** Modules rules matching wrangler's output: `*.wasm` files are compiled WebAssembly modules. */
export const WASM_RULES = [{ type: 'CompiledWasm', include: ['**/*.wasm'] }];
