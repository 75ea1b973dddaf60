// Checks shared by the Dovecot and the in-process server suites.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

import { AuthError, ServerError } from 'popwire';
import { wireForm } from './corpus.mjs';

const CRLF2 = Buffer.from('\r\n\r\n');

export const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

function assertBytes(actual, expected, what) {
  assert.ok(actual instanceof Uint8Array, `${what}: not a Uint8Array`);
  // Compare hashes first: a 1.2 MB diff printed by assert is unreadable.
  if (actual.length !== expected.length || sha256(actual) !== sha256(expected)) {
    assert.deepEqual(Buffer.from(actual).toString('latin1'), Buffer.from(expected).toString('latin1'), what);
  }
}

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Every Client method against a mailbox holding `messages` (stored bytes), ending with
 * message 2 deleted. `connect()` opens a session; `uids` (optional) are the expected UIDL ids;
 * `sizes` the expected LIST sizes (default: what RETR delivers; Dovecot does not count the
 * CRLF it adds to a last line without one).
 */
export async function everyMethod(connect, { user, password, messages, uids, tls, sizes }) {
  const wire = messages.map(wireForm);
  sizes ??= wire.map((w) => w.length);
  const client = await connect();
  assert.equal(client.isTls, tls);
  assert.ok(client.greeting.length > 0);
  assert.ok(client.capabilities.some((c) => c.name === 'UIDL'));

  await assert.rejects(client.login(user, `${password}-wrong`), (e) => e instanceof AuthError && e.code === 'AUTH');
  await client.login(user, password);

  const caps = (await client.capa()).map((c) => c.name);
  assert.ok(caps.includes('TOP') && caps.includes('UIDL'), caps.join(' '));

  assert.deepEqual(await client.stat(), { count: messages.length, size: sizes.reduce((n, s) => n + s, 0) });
  assert.deepEqual(await client.list(), sizes.map((size, i) => ({ number: i + 1, size })));
  assert.deepEqual(await client.list(2), { number: 2, size: sizes[1] });
  const uidl = await client.uidl();
  assert.deepEqual(uidl.map((e) => e.number), messages.map((_, i) => i + 1));
  if (uids) assert.deepEqual(uidl.map((e) => e.uid), uids);
  assert.deepEqual(await client.uidl(2), uidl[1]);

  // Byte-exact bodies, fetched pipelined.
  const bodies = await Promise.all(messages.map((_, i) => client.retr(i + 1)));
  bodies.forEach((body, i) => assertBytes(body, wire[i], `RETR ${i + 1}`));
  assert.ok(bodies.every((b) => b.constructor === Uint8Array), 'retr() gives plain Uint8Arrays');
  const last = messages.length;
  assertBytes(await readAll(client.retrStream(last)), wire[last - 1], `retrStream ${last}`);

  const head = wire[0].subarray(0, Buffer.from(wire[0]).indexOf(CRLF2) + 4);
  assertBytes(await client.top(1, 0), head, 'TOP 1 0');

  await client.noop();
  await client.dele(1);
  await assert.rejects(client.retr(1), (e) => e instanceof ServerError && !(e instanceof AuthError) && e.command === 'RETR');
  await assert.rejects(client.retr(messages.length + 1), (e) => e instanceof ServerError && e.kind === 'server:refused');
  await client.rset();
  assertBytes(await client.retr(1), wire[0], 'RETR 1 after RSET');
  await client.dele(2);
  assert.equal(typeof (await client.quit()), 'string');
  await assert.rejects(client.noop(), (e) => e.kind === 'usage:closed' || e.kind === 'usage:wrong-state');

  // QUIT committed the deletion of message 2, and only that.
  const again = await connect();
  await again.login(user, password);
  assert.deepEqual((await again.list()).map((e) => e.size), sizes.filter((_, i) => i !== 1));
  await again.quit();
}

/** `sessions` users, each with its own messages, fetched all at once. */
export async function severalSessions(connect, users) {
  await Promise.all(
    users.map(async ({ user, password, messages }) => {
      const client = await connect();
      await client.login(user, password);
      const list = await client.list();
      assert.equal(list.length, messages.length);
      const bodies = await Promise.all(list.map((e) => client.retr(e.number)));
      bodies.forEach((b, i) => assertBytes(b, wireForm(messages[i]), `${user} RETR ${i + 1}`));
      await client.quit();
    }),
  );
}

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

/** The client engine's WebAssembly memory, in bytes (it only ever grows). */
async function wasmMemory() {
  // initSync on an initialised module returns its exports without instantiating again.
  const glue = await import('../../pkg/popwire_wasm.js');
  const url = new URL('../../pkg/popwire_wasm_bg.wasm', import.meta.url);
  return glue.initSync({ module: readFileSync(url) }).memory.buffer.byteLength;
}

/**
 * Streams message `number` (expected `expectedBytes` long, with SHA-256 `expectedHash`)
 * through `retrStream`, slowly enough for backpressure to matter, and checks that the
 * process's memory grew by less than `budget` bytes.
 */
export async function streamBounded(client, number, { expectedBytes, expectedHash, budget }) {
  gc();
  const base = process.memoryUsage();
  const wasmBefore = await wasmMemory();
  let peakRss = base.rss;
  let peakBuffers = base.arrayBuffers;
  const hash = createHash('sha256');
  let total = 0;
  let sinceCheck = 0;
  let checks = 0;
  for await (const chunk of client.retrStream(number)) {
    hash.update(chunk);
    total += chunk.length;
    sinceCheck += chunk.length;
    if (sinceCheck >= 2 << 20) {
      sinceCheck = 0;
      // Collect what the reader dropped (at most the last 2 MB, not yet swept, is counted),
      // so that what remains is what the client holds.
      gc();
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
      // A slow reader now and then: the socket must pause instead of buffering.
      if (++checks % 8 === 0) await new Promise((r) => setTimeout(r, 20));
    }
  }
  assert.equal(total, expectedBytes);
  assert.equal(hash.digest('hex'), expectedHash);
  const grew = { rss: peakRss - base.rss, arrayBuffers: peakBuffers - base.arrayBuffers, wasm: (await wasmMemory()) - wasmBefore };
  assert.ok(Object.values(grew).every((g) => g < budget), `memory grew by ${JSON.stringify(grew)} (budget ${budget})`);
  return grew;
}

/** The SHA-256 and length of `wireForm` of a message given whole or as an iterable of pieces
 * (for 100 MB messages). */
export function wireDigest(message) {
  const pieces = message instanceof Uint8Array ? [message] : message;
  const hash = createHash('sha256');
  const cr = Buffer.from('\r');
  let length = 0;
  let prev = 0;
  for (const piece of pieces) {
    let start = 0;
    for (let i = piece.indexOf(10); i !== -1; i = piece.indexOf(10, i + 1)) {
      if ((i > 0 ? piece[i - 1] : prev) !== 13) {
        hash.update(piece.subarray(start, i));
        hash.update(cr);
        length += i - start + 1;
        start = i;
      }
    }
    hash.update(piece.subarray(start));
    length += piece.length - start;
    if (piece.length > 0) prev = piece[piece.length - 1];
  }
  if (prev !== 10) {
    hash.update('\r\n');
    length += 2;
  }
  return { expectedBytes: length, expectedHash: hash.digest('hex') };
}
