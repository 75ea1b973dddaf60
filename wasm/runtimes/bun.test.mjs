// popwire under Bun, imported by package name (node_modules/popwire, as a user's project has
// it): the transcript vectors through the engine, then Client sessions against Dovecot over TLS
// and STARTTLS. Bun runs the Node transport (node:net, node:tls; `ca` is Bun's tls.ca).
//
//   cd wasm/runtimes && node_modules/.bin/bun test ./bun.test.mjs

import { afterAll, beforeAll, expect, test } from 'bun:test';

import * as checks from './checks.mjs';
import { prepare, sent, UNTRUSTED_SEES, vectors } from './harness.mjs';

let env;
beforeAll(async () => {
  env = await prepare('bun');
});
afterAll(() => env.stop());

test('transcript vectors through Engine', () => {
  checks.transcripts(vectors());
}, 120_000);
for (const security of ['tls', 'starttls']) {
  test(`session over ${security}: stat, uidl, retr byte-exact, retrStream 1 MB`, async () => {
    await checks.session(env.p, security);
  }, 60_000);
  test(`bad password over ${security}: AuthError`, async () => {
    await checks.badPassword(env.p, security);
  }, 30_000);
  test(`untrusted certificate over ${security}: TlsError before any credential`, async () => {
    await checks.untrusted(env.p, security);
    expect(sent(await env.untrustedSaw())).toEqual(UNTRUSTED_SEES[security]);
  }, 30_000);
}
test('bytes injected after STLS: ProtocolError', async () => {
  await checks.stlsInjection(env.p);
}, 30_000);
test('a closed port: NetworkError', async () => {
  await checks.failures(env.p);
}, 30_000);
