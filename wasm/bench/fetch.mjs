// Fetch speed of the Node `Client` against Dovecot over implicit TLS, next to popwire's native
// blocking client (bench/native, rustls) fetching the same mailboxes.
//
//   node bench/fetch.mjs [--runs N] [--no-native]
//
// Uses the Dovecot named by POPWIRE_DOVECOT (an env file from `popwire-fixture start`), or
// starts one. Seeds two mailboxes (1000 x 5 KB, 100 x 1 MB), then for each prints the best
// and median wall time of N runs (connect, login, LIST, RETR of every message pipelined,
// QUIT), for Node and native (taking turns), and the ratio of the medians. The native
// baseline is built on first use (`cargo build --release` in bench/native, about a minute).

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Client } from '../lib/index.js';
import { dovecot, newUser, seed } from '../test/support/dovecot.mjs';
import { sized } from '../test/support/corpus.mjs';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 5) || 5;
const native = !args.includes('--no-native');

const d = dovecot();
const NATIVE_DIR = fileURLToPath(new URL('./native/', import.meta.url));
const NATIVE_BIN = `${NATIVE_DIR}target/release/popwire-bench-native`;

async function fetchAll(user) {
  const start = performance.now();
  const client = await Client.connect({ host: d.host, port: d.tlsPort, security: 'tls', caFile: d.caFile });
  await client.login(user, d.password);
  const list = await client.list();
  // Issued together, so the engine pipelines them (PIPELINING, up to 128 in flight).
  const bodies = await Promise.all(list.map((e) => client.retr(e.number)));
  await client.quit();
  const ms = performance.now() - start;
  return { ms, messages: bodies.length, bytes: bodies.reduce((n, b) => n + b.length, 0) };
}

function nativeRun(user) {
  const out = execFileSync(NATIVE_BIN, [d.host, String(d.tlsPort), d.caFile, user, d.password, '1'], { encoding: 'utf8' });
  return JSON.parse(out.trim());
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => `${ms.toFixed(0).padStart(6)} ms`;

const cases = [
  { name: '1000 x 5 KB', count: 1000, size: 5 * 1024 },
  { name: '100 x 1 MB', count: 100, size: 1024 * 1024 },
];

if (native && !existsSync(NATIVE_BIN)) {
  console.error('building the native baseline (bench/native) ...');
  execFileSync('cargo', ['build', '--release', '-q'], { cwd: NATIVE_DIR, stdio: 'inherit' });
}

console.log(`popwire fetch over TLS from Dovecot ${d.host}:${d.tlsPort}, ${runs} runs each (best / median)`);
for (const c of cases) {
  const user = newUser('bench');
  seed(d, user, sized(c.count, c.size, 42));
  await fetchAll(user); // warm-up: JIT, and Dovecot's index of the new mailbox
  // Node and native take turns, so that a change in the machine's load hits both alike.
  const node = [];
  const rust = [];
  for (let i = 0; i < runs; i++) {
    node.push(await fetchAll(user));
    if (native) rust.push(nativeRun(user));
  }
  const ms = (rs) => rs.map((r) => r.ms);
  let line = `${c.name.padEnd(12)} (${(node[0].bytes / 1e6).toFixed(1)} MB)  node ${fmt(Math.min(...ms(node)))} / ${fmt(median(ms(node)))}`;
  if (native) {
    if (rust[0].bytes !== node[0].bytes) throw new Error(`native fetched ${rust[0].bytes} bytes, node ${node[0].bytes}`);
    const ratio = median(ms(node)) / median(ms(rust));
    line += `   native ${fmt(Math.min(...ms(rust)))} / ${fmt(median(ms(rust)))}   node/native (median) ${ratio.toFixed(2)}x`;
  }
  console.log(line);
}
d.stop();
