// popwire under Deno, imported by package name (node_modules/popwire, as a user's project has
// it): the transcript vectors through the engine, then Client sessions against Dovecot over TLS
// and STARTTLS. Deno runs the Node transport (node:net, node:tls; `ca` becomes Deno's caCerts).
//
//   cd wasm/runtimes && node_modules/.bin/deno test -A deno.test.mjs

import { assertEquals } from './assert.mjs';
import * as checks from './checks.mjs';
import { prepare, sent, UNTRUSTED_SEES, vectors } from './harness.mjs';

const env = await prepare('deno');
const { p } = env;
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test('transcript vectors through Engine', opts, () => {
  checks.transcripts(vectors());
});
for (const security of ['tls', 'starttls']) {
  Deno.test(`session over ${security}: stat, uidl, retr byte-exact, retrStream 1 MB`, opts, async () => {
    await checks.session(p, security);
  });
  Deno.test(`bad password over ${security}: AuthError`, opts, async () => {
    await checks.badPassword(p, security);
  });
  Deno.test(`untrusted certificate over ${security}: TlsError before any credential`, opts, async () => {
    await checks.untrusted(p, security);
    assertEquals(sent(await env.untrustedSaw()), UNTRUSTED_SEES[security]);
  });
}
Deno.test('bytes injected after STLS: ProtocolError', opts, async () => {
  await checks.stlsInjection(p);
});
Deno.test('a closed port: NetworkError', opts, async () => {
  await checks.failures(p);
});
Deno.test({ name: 'stop the fixtures', ...opts, fn: () => env.stop() });
