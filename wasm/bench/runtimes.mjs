// Fetch speed of the same `Client` (the package imported by name) in Node, Deno, Bun and workerd,
// next to popwire's native blocking client (bench/native), in one run against one Dovecot over
// implicit TLS: 1000 x 5 KB and 100 x 1 MB, each fetched whole (connect, login, LIST, every
// RETR pipelined, QUIT). Also the time each runtime takes to import the package.
//
//   wasm/runtimes/node_modules/.bin/node wasm/bench/runtimes.mjs [--runs N]
//
// Node 22 from wasm/runtimes runs this script (Miniflare needs it); the Node client is measured
// with the `node` on PATH (the machine's). workerd runs the Worker of runtimes/worker under
// Miniflare; its times are taken around each request, so they include Miniflare's dispatch.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { dovecot, newUser, seed } from '../test/support/dovecot.mjs';
import { sized } from '../test/support/corpus.mjs';
import { bundle, miniflare, WASM_RULES } from '../runtimes/workerd.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 5) || 5;
const RUNTIMES = fileURLToPath(new URL('../runtimes/', import.meta.url));
const NATIVE_DIR = fileURLToPath(new URL('./native/', import.meta.url));
const NATIVE_BIN = `${NATIVE_DIR}target/release/popwire-bench-native`;
const bin = (name) => `${RUNTIMES}node_modules/.bin/${name}`;

const d = dovecot();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Miniflare runs its own workerd, not wrangler's (node_modules/.bin/workerd).
const workerdVersion = JSON.parse(readFileSync(`${RUNTIMES}node_modules/miniflare/node_modules/workerd/package.json`, 'utf8')).version;
const version = (cmd, ...a) => execFileSync(cmd, a, { encoding: 'utf8' }).split('\n')[0].trim();

const children = {
  node: ['node', ['bench-fetch.mjs']],
  deno: [bin('deno'), ['run', '-A', '--no-check', 'bench-fetch.mjs']],
  bun: [bin('bun'), ['bench-fetch.mjs']],
};

function child(name, p) {
  const [cmd, a] = children[name];
  const run = spawnSync(cmd, [...a, JSON.stringify(p)], { cwd: RUNTIMES, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${name}: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop());
}

if (!existsSync(NATIVE_BIN)) {
  console.error('building the native baseline (bench/native) ...');
  execFileSync('cargo', ['build', '--release', '-q'], { cwd: NATIVE_DIR, stdio: 'inherit' });
}

// workerd: the checks Worker (it has a /bench route), and an empty Worker to subtract startup.
const worker = bundle(`${RUNTIMES}worker/wrangler.toml`);
const Miniflare = await miniflare(d.caFile);
async function startup(options) {
  const t0 = performance.now();
  const mf = new Miniflare({ compatibilityDate: '2026-07-01', ...options });
  await mf.ready;
  return { mf, ms: performance.now() - t0 };
}
const empty = [];
const full = [];
for (let i = 0; i < 3; i++) {
  const e = await startup({ modules: true, script: 'export default { fetch() { return new Response("") } }' });
  empty.push(e.ms);
  await e.mf.dispose();
  const f = await startup({ modules: true, scriptPath: worker.script, modulesRoot: worker.dir, modulesRules: WASM_RULES });
  full.push(f.ms);
  await f.mf.dispose();
}
const { mf } = await startup({ modules: true, scriptPath: worker.script, modulesRoot: worker.dir, modulesRules: WASM_RULES });
async function workerdRun(p) {
  const t0 = performance.now();
  const answer = await (await mf.dispatchFetch('http://bench/bench', { method: 'POST', body: JSON.stringify([p]) })).json();
  if (!answer.ok) throw new Error(`workerd: ${answer.error.message}`);
  return { ...answer.result, ms: performance.now() - t0 };
}

console.log(`popwire fetch over TLS from Dovecot ${d.host}:${d.tlsPort}, ${runs} runs each after a warm-up (best / median ms); ${new Date().toISOString()}`);
console.log(`node ${version('node', '--version')}, deno ${version(bin('deno'), '--version').split(' ')[1]}, bun ${version(bin('bun'), '--version')}, workerd ${workerdVersion} (Miniflare's)`);
const imports = { node: [], deno: [], bun: [] };
for (const c of [{ name: '1000 x 5 KB', count: 1000, size: 5 * 1024 }, { name: '100 x 1 MB', count: 100, size: 1024 * 1024 }]) {
  const user = newUser('rtbench');
  seed(d, user, sized(c.count, c.size, 42));
  const p = { host: d.host, port: d.tlsPort, ca: undefined, user, password: d.password, runs };
  const results = {};
  for (const name of Object.keys(children)) {
    // Node, Deno and Bun take the CA per connection; workerd has it in its trust store.
    const out = child(name, { ...p, ca: readFileSync(d.caFile, 'utf8') });
    imports[name].push(out.importMs);
    results[name] = out.runs;
  }
  await workerdRun(p); // warm-up
  results.workerd = [];
  for (let i = 0; i < runs; i++) results.workerd.push(await workerdRun(p));
  results.native = [];
  for (let i = 0; i <= runs; i++) {
    const out = JSON.parse(execFileSync(NATIVE_BIN, [d.host, String(d.tlsPort), d.caFile, user, d.password, '1'], { encoding: 'utf8' }).trim());
    if (i > 0) results.native.push(out);
  }
  const nativeMedian = median(results.native.map((r) => r.ms));
  const bytes = results.native[0].bytes;
  console.log(`\n${c.name} (${(bytes / 1e6).toFixed(1)} MB)`);
  for (const [name, rs] of Object.entries(results)) {
    if (rs.some((r) => r.bytes !== bytes)) throw new Error(`${name} fetched ${rs[0].bytes} bytes, native ${bytes}`);
    const ms = rs.map((r) => r.ms);
    console.log(`  ${name.padEnd(8)} ${Math.min(...ms).toFixed(0).padStart(6)} / ${median(ms).toFixed(0).padStart(6)}   ${(median(ms) / nativeMedian).toFixed(2)}x native`);
  }
}
console.log('\nimport of the package (ms, first import in a fresh process, each case):');
for (const [name, ms] of Object.entries(imports)) console.log(`  ${name.padEnd(8)} ${ms.map((x) => x.toFixed(1)).join(', ')}`);
console.log(`  workerd  startup with the package's Worker minus an empty Worker's (median of 3): ${(median(full) - median(empty)).toFixed(0)} ms (${median(full).toFixed(0)} - ${median(empty).toFixed(0)})`);
await mf.dispose();
worker.remove();
d.stop();
