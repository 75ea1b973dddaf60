// The Node Client against a real Dovecot (tests/dovecot/README.md), over implicit TLS and over
// STLS: every method and byte-exact bodies, several sessions at once, and a 100 MB message
// streamed with bounded memory. Uses POPWIRE_DOVECOT when set, else starts a private Dovecot.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client, TlsError } from 'popwire';
import { dovecot, newUser, seed, seedPieces } from './support/dovecot.mjs';
import { bigMessageChunks, sized, trickyMessages, wireForm } from './support/corpus.mjs';
import { everyMethod, severalSessions, streamBounded, wireDigest } from './support/exercise.mjs';

describe('Client against Dovecot', () => {
  let d;
  before(() => {
    d = dovecot();
  });
  after(() => d.stop());

  const connect = (security, extra = {}) => () =>
    Client.connect({
      host: d.host,
      port: security === 'tls' ? d.tlsPort : d.plainPort,
      security,
      caFile: d.caFile,
      timeout: 20_000,
      ...extra,
    });

  for (const security of ['tls', 'starttls']) {
    test(`every method, byte-exact (${security})`, async () => {
      const user = newUser(security);
      const messages = trickyMessages();
      const uids = seed(d, user, messages);
      // Dovecot's LIST size is the file name's W= (it does not count the CRLF it adds).
      const sizes = uids.map((name) => Number(/,W=(\d+)/.exec(name)[1]));
      await everyMethod(connect(security), { user, password: d.password, messages, uids, sizes, tls: true });
    });
  }

  test('the README example (examples/fetch-tls.mjs) fetches and deletes', () => {
    const user = newUser('example');
    const messages = sized(3, 2000, 99);
    const uids = seed(d, user, messages);
    const out = mkdtempSync(join(tmpdir(), 'pwjs-example-'));
    try {
      const env = { ...process.env, POP_HOST: d.host, POP_PORT: String(d.tlsPort), POP_USER: user, POP_PASSWORD: d.password, POP_CA_FILE: d.caFile };
      const run = spawnSync(process.execPath, [fileURLToPath(new URL('../examples/fetch-tls.mjs', import.meta.url)), out], { env, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /^3 messages, \d+ octets/);
      uids.forEach((uid, i) => assert.deepEqual(readFileSync(join(out, `${uid}.eml`)), Buffer.from(wireForm(messages[i]))));
      assert.deepEqual(readdirSync(join(d.home, user, 'Maildir', 'cur')), []);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('the CA can be given as PEM text', async () => {
    const client = await Client.connect({ host: d.host, port: d.tlsPort, ca: readFileSync(d.caFile, 'utf8') });
    assert.ok(client.isTls);
    await client.quit();
  });

  test('a certificate from another CA is a TlsError (tls and starttls)', async () => {
    const ca = readFileSync(`${d.caDir}/wrong-ca.pem`, 'utf8');
    for (const security of ['tls', 'starttls']) {
      await assert.rejects(connect(security, { caFile: undefined, ca })(), (e) => e instanceof TlsError && e.kind === 'tls:certificate');
    }
  });

  test('several sessions at once', async () => {
    const users = Array.from({ length: 8 }, (_, i) => {
      const user = newUser(`multi${i}`);
      const messages = sized(25, 4000 + i * 500, i);
      seed(d, user, messages);
      return { user, password: d.password, messages };
    });
    const half = users.length / 2;
    await Promise.all([
      severalSessions(connect('tls'), users.slice(0, half)),
      severalSessions(connect('starttls'), users.slice(half)),
    ]);
  });

  test('a 100 MB message streams with bounded memory', async () => {
    const user = newUser('big');
    const size = 100 * 1024 * 1024;
    seedPieces(d, user, bigMessageChunks(size));
    const expected = wireDigest(bigMessageChunks(size));
    const client = await connect('tls')();
    await client.login(user, d.password);
    assert.deepEqual(await client.list(), [{ number: 1, size: expected.expectedBytes }]);
    const grew = await streamBounded(client, 1, { ...expected, budget: 32 * 1024 * 1024 });
    console.log(`# 100 MB stream from Dovecot: memory grew by ${JSON.stringify(grew)}`);
    await client.quit();
  });
});
