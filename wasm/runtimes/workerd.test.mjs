// popwire under workerd (Cloudflare's Workers runtime, from npm): a Worker that imports the
// package by name (worker/index.js, bundled by wrangler) runs checks.mjs: the transcript
// vectors through the engine, then Client sessions against Dovecot over TLS and STARTTLS with
// the cloudflare:sockets transport. workerd trusts the test CA through its own config.
//
//   cd wasm/runtimes && node_modules/.bin/node --test workerd.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { prepare, sent, UNTRUSTED_SEES, vectors } from './harness.mjs';
import { bundle, miniflare, WASM_RULES } from './workerd.js';

let env;
let worker;
let mf;

before(async () => {
  env = await prepare('workerd', { ca: false });
  worker = bundle(fileURLToPath(new URL('./worker/wrangler.toml', import.meta.url)));
  const Miniflare = await miniflare(env.caFile);
  mf = new Miniflare({ modules: true, scriptPath: worker.script, modulesRoot: worker.dir, modulesRules: WASM_RULES, compatibilityDate: '2026-07-01' });
});
after(async () => {
  await mf?.dispose();
  worker?.remove();
  env?.stop();
});

/** Runs `checks[name](...args)` inside the Worker; rethrows its failure here. */
async function inWorker(name, ...args) {
  const response = await mf.dispatchFetch(`http://checks/${name}`, { method: 'POST', body: JSON.stringify(args) });
  const answer = await response.json();
  if (!answer.ok) {
    const e = answer.error;
    assert.fail(`${e.name} ${e.kind ?? ''}: ${e.message}\n${e.stack ?? ''}`);
  }
  return answer.result;
}

test('transcript vectors through Engine', async () => {
  await inWorker('transcripts', vectors());
});
for (const security of ['tls', 'starttls']) {
  test(`session over ${security}: stat, uidl, retr byte-exact, retrStream 1 MB`, async (t) => {
    t.diagnostic(JSON.stringify(await inWorker('session', env.p, security)));
  });
  test(`bad password over ${security}: AuthError`, async () => {
    await inWorker('badPassword', env.p, security);
  });
  test(`untrusted certificate over ${security}: TlsError before any credential`, async () => {
    await inWorker('untrusted', env.p, security);
    assert.deepEqual(sent(await env.untrustedSaw()), UNTRUSTED_SEES[security]);
  });
}
test('bytes injected after STLS: ProtocolError', async () => {
  await inWorker('stlsInjection', env.p);
});
test('a closed port: NetworkError', async () => {
  await inWorker('failures', env.p);
});
test('ca and caFile: a ConfigError that says where the CA goes', async () => {
  await inWorker('workerdCa', env.p);
});
