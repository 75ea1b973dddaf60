// The example Worker (examples/worker/) under workerd, as `wrangler deploy` would bundle it,
// with Miniflare's local R2 and Durable Object storage (local emulations, not Cloudflare's
// services): cron runs fired by the test move a Dovecot mailbox into R2 exactly once and leave
// the server empty.
//
//   cd wasm/runtimes && node_modules/.bin/node --test example-worker.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { dovecot, newUser, seed } from '../test/support/dovecot.mjs';
import { sized, trickyMessages, wireForm } from '../test/support/corpus.mjs';
import { bundle, miniflare, WASM_RULES } from './workerd.js';

const EXAMPLE = fileURLToPath(new URL('../examples/worker/', import.meta.url));
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

let d;
let worker;
let mf;
let user;
let expected;
let options;
/** What the Worker wrote to its console. */
let logged = '';

before(async () => {
  d = dovecot();
  user = newUser('cron');
  // 12 messages, the edge cases among them; MAX_MESSAGES=5 makes it take three runs.
  const messages = [...trickyMessages().slice(0, 9), ...sized(3, 20_000, 41)];
  const uids = seed(d, user, messages);
  expected = new Map(uids.map((uid, i) => [uid, sha256(wireForm(messages[i]))]));
  // What `npm install` in examples/worker does for its `popwire: file:../..` dependency.
  const link = join(EXAMPLE, 'node_modules', 'popwire');
  if (!existsSync(link)) {
    mkdirSync(join(EXAMPLE, 'node_modules'), { recursive: true });
    symlinkSync('../../..', link);
  }
  worker = bundle(join(EXAMPLE, 'wrangler.toml'));
  const Miniflare = await miniflare(d.caFile);
  options = {
    modules: true,
    scriptPath: worker.script,
    modulesRoot: worker.dir,
    modulesRules: WASM_RULES,
    compatibilityDate: '2026-07-01',
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) stream.on('data', (chunk) => (logged += chunk));
    },
    r2Buckets: ['MAIL'],
    durableObjects: { MAILBOX: { className: 'Mailbox', useSQLite: true } },
    bindings: {
      POP_HOST: d.host,
      POP_PORT: String(d.tlsPort),
      POP_SECURITY: 'tls',
      POP_USER: user,
      POP_PASSWORD: d.password,
      MAX_MESSAGES: '5',
    },
  };
  mf = new Miniflare(options);
});
after(async () => {
  await mf?.dispose();
  worker?.remove();
});

/** Every object in the local R2 bucket: key → SHA-256 of its body. */
async function bucket() {
  const r2 = await mf.getR2Bucket('MAIL');
  const objects = new Map();
  let cursor;
  do {
    const page = await r2.list({ cursor, include: ['customMetadata'] });
    for (const o of page.objects) {
      const body = new Uint8Array(await (await r2.get(o.key)).arrayBuffer());
      objects.set(o.customMetadata.uid, { key: o.key, hash: sha256(body) });
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return objects;
}

/** Messages still on the server (Dovecot's Maildir). */
function onServer() {
  const md = join(d.home, user, 'Maildir');
  return readdirSync(join(md, 'new')).length + readdirSync(join(md, 'cur')).length;
}

async function cron(expect = 'ok') {
  const w = await mf.getWorker();
  const { outcome } = await w.scheduled({ cron: '*/5 * * * *' });
  assert.equal(outcome, expect);
}

test('a failed R2 put deletes nothing: the run fails, the mail stays on the server', async () => {
  // R2 refuses keys over 1024 bytes: a real failure of the put, from the local R2.
  await mf.setOptions({ ...options, bindings: { ...options.bindings, R2_PREFIX: 'x'.repeat(1100) } });
  try {
    await cron('exception');
    assert.match(logged, /poll failed: .*put: .*object name is not valid/);
    assert.equal((await bucket()).size, 0);
    assert.equal(onServer(), expected.size);
  } finally {
    await mf.setOptions(options);
  }
});

test('each cron run stores at most MAX_MESSAGES and deletes only what it stored', async () => {
  await cron();
  assert.equal((await bucket()).size, 5);
  assert.equal(onServer(), 7);
  await cron();
  assert.equal((await bucket()).size, 10);
  assert.equal(onServer(), 2);
});

test('the mailbox ends up in R2 exactly once, byte-exact, and the server empty', async () => {
  await cron();
  assert.equal(onServer(), 0);
  const stored = await bucket();
  assert.deepEqual([...stored.keys()].sort(), [...expected.keys()].sort());
  for (const [uid, { key, hash }] of stored) {
    assert.equal(hash, expected.get(uid), `the R2 object of ${uid}`);
    assert.equal(key, `${user}@${d.host}/${encodeURIComponent(uid)}.eml`);
  }
  // A further run finds nothing and changes nothing.
  await cron();
  assert.equal((await bucket()).size, expected.size);
});
