// The sans-IO client engine for any JS runtime: `Engine`, a subclass of the wasm-bindgen class
// that decodes events and maps errors to the classes of errors.js.

import * as wasm from '../pkg/popwire_wasm.js';
import { load } from '#load';
import { fromEngine } from './errors.js';

await load(wasm, 'popwire_wasm_bg.wasm');

export { PopwireError, ServerError, AuthError, TlsError, ProtocolError, ConfigError, TimeoutError, NetworkError, StorageError, AbortError, ERROR_CLASSES } from './errors.js';

// Event and reply tags: keep in step with wasm/src/engine.rs.
const EV_GREETING = 0;
const EV_READY = 1;
const EV_TLS_READY = 2;
const EV_BODY = 3;
const EV_OK = 4;
const EV_ERR = 5;

function decodeReply(tag, b, c) {
  switch (tag) {
    case 0: return { type: 'ok', text: b };
    case 1: return { type: 'authenticated' };
    case 2: return { type: 'stat', count: b, size: c };
    case 3: {
      const entries = new Array(b.length / 2);
      for (let i = 0; i < entries.length; i++) entries[i] = { number: b[2 * i], size: b[2 * i + 1] };
      return { type: 'list', entries };
    }
    case 4: return { type: 'list-one', entry: { number: b, size: c } };
    case 5: {
      const uids = b.length === 0 ? [] : c.split('\n');
      const entries = new Array(b.length);
      for (let i = 0; i < entries.length; i++) entries[i] = { number: b[i], uid: uids[i] };
      return { type: 'uidl', entries };
    }
    case 6: return { type: 'uidl-one', entry: { number: b, uid: c } };
    case 7: return { type: 'capabilities', capabilities: b };
    case 8: {
      const languages = [];
      for (let i = 0; i < b.length; i += 2) languages.push({ tag: b[i], description: b[i + 1] });
      return { type: 'languages', languages };
    }
    case 9: return { type: 'retrieved', octets: b };
    case 10: return { type: 'tls-ready' };
    case 11: return { type: 'closed', text: b };
    default: throw new Error(`popwire: unknown reply tag ${tag}`);
  }
}

function decodeEvent(a) {
  switch (a[0]) {
    case EV_GREETING: return { type: 'greeting', text: a[2], apopTimestamp: a[3] ?? null };
    case EV_READY: return { type: 'ready', capabilities: a[2] };
    case EV_TLS_READY: return { type: 'tls-ready' };
    case EV_BODY: return { type: 'body', id: a[1], data: a[2] };
    case EV_OK: return { type: 'completed', id: a[1], reply: decodeReply(a[2], a[3], a[4]) };
    case EV_ERR: return { type: 'completed', id: a[1], error: fromEngine(a[2]) };
    default: throw new Error(`popwire: unknown event tag ${a[0]}`);
  }
}

function randomNonce() {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes));
}

/**
 * A POP3 client session as a state machine: no sockets, no timers. Feed the server's bytes
 * to `handleInput`, write what `pollTransmit` returns, and act on `pollEvent(s)`.
 */
export class Engine extends wasm.Engine {
  constructor(options) {
    try {
      super(options);
    } catch (e) {
      throw fromEngine(e);
    }
  }

  handleInput(data) {
    try {
      super.handleInput(data);
    } catch (e) {
      throw fromEngine(e);
    }
  }

  handleEof() {
    try {
      super.handleEof();
    } catch (e) {
      throw fromEngine(e);
    }
  }

  tlsEstablished() {
    try {
      super.tlsEstablished();
    } catch (e) {
      throw fromEngine(e);
    }
  }

  pollEvent() {
    let raw;
    try {
      raw = super.pollEvent();
    } catch (e) {
      throw fromEngine(e);
    }
    return raw === undefined ? undefined : decodeEvent(raw);
  }

  pollEvents() {
    let raw;
    try {
      raw = super.pollEvents();
    } catch (e) {
      throw fromEngine(e);
    }
    for (let i = 0; i < raw.length; i++) raw[i] = decodeEvent(raw[i]);
    return raw;
  }

  authenticate({ username, password, token, method = 'auto', authzid, host, port, nonce } = {}) {
    if (typeof username !== 'string') throw new TypeError('authenticate: username must be a string');
    const isToken = token !== undefined;
    const secret = isToken ? token : password;
    if (typeof secret !== 'string') throw new TypeError('authenticate: give a password or a token (string)');
    return this.#call(super.authenticate, username, secret, isToken, method, nonce ?? randomNonce(), authzid, host, port);
  }

  user(name) { return this.#call(super.user, name); }
  pass(password) { return this.#call(super.pass, password); }
  apop(name, password) { return this.#call(super.apop, name, password); }
  capa() { return this.#call(super.capa); }
  stls() { return this.#call(super.stls); }
  stat() { return this.#call(super.stat); }
  list(number) { return this.#call(super.list, number); }
  uidl(number) { return this.#call(super.uidl, number); }
  retr(number) { return this.#call(super.retr, number); }
  top(number, lines) { return this.#call(super.top, number, lines); }
  dele(number) { return this.#call(super.dele, number); }
  noop() { return this.#call(super.noop); }
  rset() { return this.#call(super.rset); }
  quit() { return this.#call(super.quit); }
  utf8() { return this.#call(super.utf8); }
  lang(tag) { return this.#call(super.lang, tag); }

  #call(method, ...args) {
    try {
      return method.apply(this, args);
    } catch (e) {
      throw fromEngine(e);
    }
  }
}
