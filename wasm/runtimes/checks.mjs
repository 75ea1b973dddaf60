// The checks every runtime runs (Deno, Bun, and workerd inside a Worker), through
// `import ... from 'popwire'` as users write it. Only the package and web APIs are used here, so
// the same file runs everywhere; each throws on the first failure. `p` is made by harness.mjs.

import { AuthError, Client, ConfigError, Engine, NetworkError, ProtocolError, TlsError } from 'popwire';
import { checkVector } from '../test/support/transcripts.mjs';

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

function same(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`check failed: ${what}\n  got:      ${a}\n  expected: ${e}`);
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function rejects(promise, test, what) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  check(error !== undefined, `${what}: no error`);
  if (!test(error)) throw new Error(`check failed: ${what}: got ${error?.name} ${error?.kind}: ${error?.message}`);
  return error;
}

/** Every vector of tests/vectors (`[name, text]` pairs) through `Engine`: whole, byte by byte,
 * and split at every 5th offset (node --test covers every offset; the wasm is the same). */
export function transcripts(vectors) {
  check(vectors.length >= 20, `the full vector set (${vectors.length})`);
  for (const [name, text] of vectors) checkVector(Engine, name, text, { stride: 5 });
  return { vectors: vectors.length };
}

/** The `ca` option where the runtime takes one; workerd trusts the CA through its config. */
const trust = (p) => (p.ca === undefined ? {} : { ca: p.ca });

function connect(p, security) {
  return Client.connect({ host: p.host, port: security === 'tls' ? p.tlsPort : p.plainPort, security, timeout: 20_000, ...trust(p) });
}

/** A session over `security`: stat, list, uidl, every message byte-exact (pipelined), the last
 * (1 MB) one again with retrStream, in more than one chunk. Nothing is deleted. */
export async function session(p, security) {
  const client = await connect(p, security);
  check(client.isTls, 'the session is TLS');
  await client.login(p.user, p.password);
  same(await client.stat(), { count: p.uids.length, size: p.sizes.reduce((a, b) => a + b, 0) }, 'STAT');
  same(await client.list(), p.sizes.map((size, i) => ({ number: i + 1, size })), 'LIST');
  same(await client.uidl(), p.uids.map((uid, i) => ({ number: i + 1, uid })), 'UIDL');
  const bodies = await Promise.all(p.uids.map((_, i) => client.retr(i + 1)));
  for (let i = 0; i < bodies.length; i++) {
    check(bodies[i] instanceof Uint8Array, `RETR ${i + 1} is a Uint8Array`);
    same(await sha256(bodies[i]), p.hashes[i], `RETR ${i + 1} (${bodies[i].length} octets), SHA-256`);
  }
  const last = p.uids.length;
  const chunks = [];
  for await (const chunk of client.retrStream(last)) chunks.push(chunk);
  const streamed = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (streamed.set(c, at), at + c.length), 0);
  check(streamed.length >= 1 << 20, `retrStream ${last} is the 1 MB message (${streamed.length})`);
  same(await sha256(streamed), p.hashes[last - 1], `retrStream ${last}, SHA-256`);
  check(chunks.length > 1, `retrStream came in pieces (${chunks.length})`);
  check(typeof (await client.quit()) === 'string', 'QUIT');
  return { messages: bodies.length, octets: bodies.reduce((n, b) => n + b.length, 0), streamedChunks: chunks.length };
}

/** A wrong password is an AuthError with the server's [AUTH] code. */
export async function badPassword(p, security) {
  const client = await connect(p, security);
  const e = await rejects(client.login(p.user, `${p.password}-wrong`), (e) => e instanceof AuthError, 'wrong password');
  same([e.kind, e.code], ['server:refused', 'AUTH'], 'the AuthError');
  client.close();
  return { kind: e.kind, code: e.code };
}

/** A certificate no trusted CA signed (harness.mjs's untrusted server) fails the connect with a
 * TlsError; `login` is never reached, and that server logs what was sent in the clear. */
export async function untrusted(p, security) {
  const port = security === 'tls' ? p.untrusted.tlsPort : p.untrusted.plainPort;
  const connecting = Client.connect({ host: p.host, port, security, timeout: 20_000, ...trust(p) });
  const e = await rejects(connecting, (e) => e instanceof TlsError, `untrusted certificate (${security})`);
  // Node's TLS names the reason; workerd gives JavaScript none (README, Runtimes).
  same(e.kind, p.ca === undefined ? 'tls:failed' : 'tls:certificate', 'the TlsError kind');
  return { kind: e.kind, message: e.message };
}

/** Bytes injected behind STLS's +OK (before TLS) end the session with a ProtocolError. */
export async function stlsInjection(p) {
  const connecting = Client.connect({ host: p.host, port: p.untrusted.injectPort, security: 'starttls', timeout: 20_000, ...trust(p) });
  const e = await rejects(connecting, (e) => e instanceof ProtocolError, 'a reply injected before TLS');
  same(e.kind, 'protocol:injection-after-stls', 'the ProtocolError');
  return { kind: e.kind };
}

/** Refused connections and impossible options fail with their classes. */
export async function failures(p) {
  const refused = await rejects(Client.connect({ host: p.host, port: p.closedPort, security: 'starttls' }), (e) => e instanceof NetworkError, 'a closed port');
  same(refused.kind, 'net:connect', 'a closed port');
  return { refused: refused.kind };
}

/** Under workerd: `ca` and `caFile` cannot work, and say so. */
export async function workerdCa(p) {
  const e = await rejects(Client.connect({ host: p.host, port: p.tlsPort, ca: p.caText }), (e) => e instanceof ConfigError, 'ca under workerd');
  check(/trusted certificates/.test(e.message), 'the ConfigError says where a CA goes');
  await rejects(Client.connect({ host: p.host, port: p.tlsPort, caFile: '/ca.pem' }), (e) => e instanceof ConfigError, 'caFile under workerd');
  return { kind: e.kind };
}
