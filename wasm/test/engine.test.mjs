// The glue of the sans-IO classes: Engine and Server talking in memory, event and reply
// shapes, the STLS hook, option checking and the error classes. (Protocol behaviour is the
// Rust suite's and the transcript vectors'.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { Engine, AuthError, ConfigError, ERROR_CLASSES, PopwireError, ProtocolError, ServerError, StorageError } from 'popwire';
import * as engineOnly from 'popwire/engine';
import { Maildrop, Server } from 'popwire/server';
import { fromEngine } from '../lib/errors.js';

const text = (bytes) => Buffer.from(bytes).toString('latin1');

/** Moves bytes both ways until neither side has anything to say; returns the client's events. */
function converse(client, server, { batched = false } = {}) {
  const events = [];
  for (let moved = true; moved; ) {
    moved = false;
    let bytes;
    while ((bytes = server.pollTransmit()) !== undefined) {
      client.handleInput(bytes);
      moved = true;
    }
    if (batched) events.push(...client.pollEvents());
    else for (let ev; (ev = client.pollEvent()) !== undefined; ) events.push(ev);
    while ((bytes = client.pollTransmit()) !== undefined) {
      server.handleInput(bytes);
      moved = true;
    }
  }
  return events;
}

function pair(engineOptions, serverOptions) {
  const maildrop = new Maildrop();
  maildrop.addUser('alice', 'wonderland');
  maildrop.addMessage('Subject: one\n\n.dot line\nbody\n');
  maildrop.addMessage(new TextEncoder().encode('Subject: two\r\n\r\nsecond\r\n'));
  return { maildrop, client: new Engine(engineOptions), server: new Server(maildrop, serverOptions) };
}

test('every command, with the shapes of events and replies', () => {
  const { maildrop, client, server } = pair({ security: 'none' });
  assert.equal(client.phase, 'greeting');
  const [greeting, ready] = converse(client, server);
  assert.deepEqual(greeting, { type: 'greeting', text: 'popwire POP3 server ready', apopTimestamp: null });
  assert.equal(ready.type, 'ready');
  assert.deepEqual(ready.capabilities.find((c) => c.name === 'SASL'), { name: 'SASL', args: ['SCRAM-SHA-256'] });
  assert.equal(client.greeting, 'popwire POP3 server ready');
  assert.deepEqual(client.capabilities, ready.capabilities);

  const uids = maildrop.uids();
  const ids = [
    client.authenticate({ username: 'alice', password: 'wonderland' }),
    client.stat(),
    client.list(),
    client.list(2),
    client.uidl(),
    client.uidl(1),
    client.retr(1),
    client.top(2, 0),
    client.capa(),
    client.dele(1),
    client.rset(),
    client.noop(),
    client.dele(2),
    client.quit(),
  ];
  assert.deepEqual(ids, [...ids.keys()]);
  assert.equal(client.pending, ids.length);
  const events = converse(client, server);
  const body = (id) => text(Buffer.concat(events.filter((e) => e.type === 'body' && e.id === id).map((e) => e.data)));
  const reply = (id) => events.find((e) => e.type === 'completed' && e.id === id).reply;
  assert.deepEqual(reply(0), { type: 'authenticated' });
  assert.deepEqual(reply(1), { type: 'stat', count: 2, size: 57 });
  assert.deepEqual(reply(2), { type: 'list', entries: [{ number: 1, size: 33 }, { number: 2, size: 24 }] });
  assert.deepEqual(reply(3), { type: 'list-one', entry: { number: 2, size: 24 } });
  assert.deepEqual(reply(4), { type: 'uidl', entries: [{ number: 1, uid: uids[0] }, { number: 2, uid: uids[1] }] });
  assert.deepEqual(reply(5), { type: 'uidl-one', entry: { number: 1, uid: uids[0] } });
  assert.equal(body(6), 'Subject: one\r\n\r\n.dot line\r\nbody\r\n');
  assert.deepEqual(reply(6), { type: 'retrieved', octets: 33 });
  assert.equal(body(7), 'Subject: two\r\n\r\n');
  assert.equal(reply(8).type, 'capabilities');
  assert.equal(reply(9).type, 'ok');
  assert.equal(reply(12).type, 'ok');
  assert.deepEqual(reply(13), { type: 'closed', text: 'Bye' });
  assert.equal(client.phase, 'closed');
  client.handleEof();
  assert.ok(server.isClosed);
  const serverEvents = [];
  for (let ev; (ev = server.pollEvent()) !== undefined; ) serverEvents.push(ev);
  assert.deepEqual(serverEvents, [
    { type: 'logged-in', user: 'alice', method: 'SCRAM-SHA-256' },
    { type: 'committed', deleted: [1] },
    { type: 'closed', reason: 'quit' },
  ]);
  assert.equal(maildrop.length, 1);
});

test('pollEvents merges the body chunks of a command', () => {
  const { client, server } = pair({ security: 'none' }, { chunkSize: 8 });
  converse(client, server, { batched: true });
  client.authenticate({ username: 'alice', password: 'wonderland' });
  const id = client.retr(1);
  const events = converse(client, server, { batched: true });
  const bodies = events.filter((e) => e.type === 'body');
  assert.ok(bodies.length >= 1);
  assert.equal(text(Buffer.concat(bodies.map((b) => b.data))), 'Subject: one\r\n\r\n.dot line\r\nbody\r\n');
  assert.deepEqual(events.at(-1), { type: 'completed', id, reply: { type: 'retrieved', octets: 33 } });
});

test('the STLS hook: tls-ready, the gap, then tlsEstablished', () => {
  const { client, server } = pair({ security: 'starttls' }, { offerStls: true });
  const events = converse(client, server);
  assert.deepEqual(events.map((e) => e.type), ['greeting', 'tls-ready']);
  assert.equal(client.phase, 'awaiting-tls');
  assert.equal(client.isTls, false);
  // Nothing goes out, and no login is taken, until TLS is up.
  assert.equal(client.pollTransmit(), undefined);
  assert.throws(() => client.authenticate({ username: 'alice', password: 'wonderland' }), (e) => e.kind === 'usage:wrong-state');
  // (the TLS handshake would run here)
  client.tlsEstablished();
  server.tlsEstablished();
  client.authenticate({ username: 'alice', password: 'wonderland' });
  const after = converse(client, server);
  assert.equal(client.isTls, true);
  assert.deepEqual(after.map((e) => e.type), ['ready', 'completed']);
  assert.deepEqual(after[1].reply, { type: 'authenticated' });
  assert.equal(server.user, 'alice');

  // A byte in the gap is an attack.
  const other = pair({ security: 'starttls' }, { offerStls: true });
  converse(other.client, other.server);
  assert.throws(() => other.client.handleInput(Buffer.from('+OK forged\r\n')), (e) => e instanceof ProtocolError && e.kind === 'protocol:injection-after-stls');
  assert.equal(other.client.phase, 'failed');
  assert.throws(() => other.client.noop(), ProtocolError);
});

test('a -ERR completes its command with a ServerError; a wrong password with an AuthError', () => {
  const { client, server } = pair({ security: 'none' });
  converse(client, server);
  const bad = client.authenticate({ username: 'alice', password: 'nope' });
  const [failed] = converse(client, server);
  assert.equal(failed.id, bad);
  assert.ok(failed.error instanceof AuthError);
  assert.equal(failed.error.code, 'AUTH');
  assert.equal(failed.error.kind, 'server:refused');
  client.authenticate({ username: 'alice', password: 'wonderland' });
  converse(client, server);
  const missing = client.retr(9);
  const [refused] = converse(client, server);
  assert.equal(refused.id, missing);
  assert.ok(refused.error instanceof ServerError && !(refused.error instanceof AuthError));
  assert.equal(refused.error.command, 'RETR');
  assert.equal(refused.error.code, null);
  assert.equal(refused.error.temporary, false);
});

test('refusals and bad arguments throw at once, as PopwireErrors with a kind', () => {
  const client = new Engine({ security: 'none', negotiate: false });
  assert.throws(() => client.stat(), (e) => e instanceof PopwireError && e.kind === 'usage:wrong-state');
  assert.throws(() => client.retr(0), (e) => e.kind === 'usage:invalid-argument');
  assert.throws(() => client.retr(1.5), (e) => e.kind === 'usage:invalid-argument');
  assert.throws(() => client.user('a\r\nDELE 1'), (e) => e.kind === 'usage:wrong-state' || e.kind === 'usage:forbidden-byte');
  client.handleInput(Buffer.from('+OK hi\r\n'));
  client.pollEvents();
  assert.throws(() => client.user('bob'), (e) => e instanceof ConfigError && e.kind === 'policy:cleartext-forbidden');
  assert.throws(() => client.authenticate({ username: 'bob', password: 'x', method: 'NOPE' }), (e) => e.kind === 'usage:invalid-argument');
  assert.throws(() => client.authenticate({ username: 'bob' }), TypeError);
  assert.throws(() => new Engine({ security: 'ssl' }), (e) => e instanceof PopwireError && e.kind === 'usage:invalid-argument');
  assert.throws(() => new Engine({ maxInFlight: -1 }), PopwireError);
  assert.throws(() => new Engine({ negotiate: 'yes' }), PopwireError);
  assert.throws(() => new Server(new Maildrop(), { mechanisms: ['NOPE'] }), PopwireError);
  assert.throws(() => new Engine(5), PopwireError);
});

test('garbage from the server is fatal, and stays fatal', () => {
  const client = new Engine();
  client.handleInput(Buffer.from('HELLO\r\n'));
  assert.throws(() => client.pollEvents(), (e) => e instanceof ProtocolError && e.kind === 'protocol:bad-greeting');
  assert.throws(() => client.pollEvent(), ProtocolError);
  assert.throws(() => client.handleInput(Buffer.from('+OK\r\n')), ProtocolError);
  assert.equal(client.pollTransmit(), undefined);
});

test('the error mapping is one JS class per core class (errorClass), mechanically', () => {
  const raw = (kind, errorClass, extra = {}) => Object.assign(new Error(kind), { kind, errorClass, ...extra });
  for (const [name, Class] of Object.entries(ERROR_CLASSES)) {
    const e = fromEngine(raw('x:y', name));
    assert.ok(e instanceof Class && e instanceof PopwireError, name);
    assert.deepEqual([e.errorClass, e.kind, e.name], [name, 'x:y', Class.name]);
  }
  assert.equal(fromEngine(raw('x:y', 'cancelled')).name, 'AbortError');
  assert.ok(fromEngine(raw('x:y', 'storage')) instanceof StorageError);
  assert.ok(fromEngine(raw('server:refused', 'auth', { authFailure: true, code: 'AUTH' })) instanceof AuthError);
  const inUse = fromEngine(raw('server:refused', 'server', { authFailure: false, temporary: true, code: 'IN-USE', text: 'locked', command: 'PASS' }));
  assert.ok(inUse instanceof ServerError && inUse instanceof PopwireError && !(inUse instanceof AuthError));
  assert.deepEqual([inUse.code, inUse.text, inUse.command, inUse.temporary, inUse.name, inUse.errorClass], ['IN-USE', 'locked', 'PASS', true, 'ServerError', 'server']);
  // `temporary` is the engine's, not the class default.
  assert.equal(fromEngine(raw('protocol:unexpected-eof', 'network', { temporary: true })).temporary, true);
  assert.equal(fromEngine(raw('x:y', 'network', { temporary: false })).temporary, false);
  // A class this package does not know yet: still a PopwireError, with the name.
  const unknown = fromEngine(raw('x:y', 'someday'));
  assert.ok(unknown.constructor === PopwireError && unknown.errorClass === 'someday');
  const trap = new WebAssembly.RuntimeError('unreachable');
  assert.equal(fromEngine(trap), trap);
});

test('the engine classes its errors (errorClass, temporary) as the core does', () => {
  const client = new Engine({ negotiate: false });
  assert.throws(() => client.stat(), (e) => e instanceof ConfigError && e.errorClass === 'config' && e.kind === 'usage:wrong-state' && e.temporary === false);
  assert.throws(() => client.retr(0), (e) => e instanceof ConfigError && e.errorClass === 'config' && e.kind === 'usage:invalid-argument');
  assert.throws(() => new Engine({ security: 'ssl' }), (e) => e instanceof ConfigError && e.kind === 'usage:invalid-argument');
});

test('SCRAM nonces are fresh per login', () => {
  const first = (engine) => {
    engine.handleInput(Buffer.from('+OK hi\r\n'));
    engine.pollEvents();
    engine.authenticate({ username: 'u', password: 'p', method: 'SCRAM-SHA-256' });
    return text(engine.pollTransmit());
  };
  const a = first(new Engine({ negotiate: false }));
  const b = first(new Engine({ negotiate: false }));
  assert.match(a, /^AUTH SCRAM-SHA-256 \S+\r\n$/);
  assert.notEqual(a, b);
});

test('popwire/engine is the runtime-neutral entry; free() releases memory', () => {
  assert.equal(engineOnly.Engine, Engine);
  assert.equal(engineOnly.ServerError, ServerError);
  const engine = new Engine();
  engine.free();
  assert.throws(() => engine.stat());
  const maildrop = new Maildrop();
  maildrop[Symbol.dispose]();
  assert.throws(() => maildrop.addUser('x', 'y'));
});

test('the fetch-based loader (browsers, Deno) instantiates the module', () => {
  // A fresh process whose fetch reads file: URLs, as Deno's does.
  const script = `
    import { readFileSync } from 'node:fs';
    globalThis.fetch = async (url) => new Response(readFileSync(url), { headers: { 'content-type': 'application/wasm' } });
    const { load } = await import(${JSON.stringify(new URL('../lib/load-web.js', import.meta.url).href)});
    const glue = await import(${JSON.stringify(new URL('../pkg/popwire_wasm.js', import.meta.url).href)});
    await load(glue, new URL(${JSON.stringify(new URL('../pkg/popwire_wasm_bg.wasm', import.meta.url).href)}));
    console.log(new glue.Engine().phase);
  `;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.stdout.trim(), 'greeting', run.stderr);
});
