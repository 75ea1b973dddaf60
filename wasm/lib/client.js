// The client: moves bytes between a socket and the sans-IO `Engine`, and turns completions into
// promises. No protocol logic lives here, and no runtime's socket API: `#transport` (the
// package's `imports` map) picks node:net/node:tls for Node, Deno and Bun, and
// `cloudflare:sockets` under workerd. A transport is `open(options, events)` returning a socket
// with `write(bytes)`, `startTls()`, `pause()`, `resume()`, `end()`, `destroy()` and `defer(fn)`
// (run `fn` once the reads ready now were delivered); it calls
// `events.data(bytes)`, `end()`, `secure()` (TLS is up), `timeout()` (idle for `timeout` ms)
// and `error(err)` with a NetworkError, TimeoutError, TlsError or ProtocolError it has
// classified (the core's class names: lib/errors.js).

import { open, readCaFile } from '#transport';
import { Engine } from './engine.js';
import { AbortError, ConfigError, TimeoutError, fromEngine } from './errors.js';

const INTERNAL = Symbol('popwire.Client');

const SECURITY = new Set(['tls', 'starttls', 'none']);
/** Most received bytes collected before they are fed to the engine. */
const FEED_MAX = 256 * 1024;
/** Bytes a `retrStream` buffers before the socket stops reading. */
const STREAM_HIGH_WATER = 1 << 20;

/** The chunks as one Uint8Array (Buffer.concat without Node). */
function concat(chunks, total) {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The caller aborted (class `cancelled`, as adapter-situations.txt's `cancelled` row). */
function aborted(signal) {
  return new AbortError('the operation was aborted', { kind: 'cancelled', cause: signal.reason });
}

/**
 * A POP3 session over the runtime's socket. Make one with `await Client.connect({...})`.
 *
 * Every method returns a promise and may be called without awaiting the previous one: the
 * engine pipelines commands when the server allows it, and replies arrive in order.
 */
export class Client {
  #engine;
  #socket = null;
  #host;
  #port;
  #ca;
  #timeout;
  #waiters = new Map();
  #connecting = null;
  #failure = null;
  #flushQueued = false;
  #incoming = [];
  #incomingBytes = 0;
  #feedQueued = false;
  #pausedBy = new Set();
  #unwatch = null;

  /** Use `Client.connect`. */
  constructor(key, engine, { host, port, ca, timeout }) {
    if (key !== INTERNAL) throw new TypeError('use `await Client.connect({ host, ... })`');
    this.#engine = engine;
    this.#host = host;
    this.#port = port;
    this.#ca = ca;
    this.#timeout = timeout;
  }

  /**
   * Connects, reads the greeting and negotiates (CAPA; with `starttls` also STLS, the TLS
   * handshake on the same socket, and CAPA again). Resolves once the session can log in.
   * `signal` (an AbortSignal) governs the whole session: aborting drops the connection, as
   * `close()` does, and rejects what is pending with an AbortError (class `cancelled`).
   */
  static async connect({
    host,
    port,
    security = 'tls',
    ca,
    caFile,
    timeout = 60_000,
    allowCleartextPassword = false,
    signal,
  } = {}) {
    if (typeof host !== 'string' || host === '') throw new TypeError('connect: host must be a non-empty string');
    if (!SECURITY.has(security)) throw new TypeError("connect: security must be 'tls', 'starttls' or 'none'");
    port ??= security === 'tls' ? 995 : 110;
    let trusted = ca === undefined ? undefined : [ca].flat();
    if (caFile !== undefined) {
      try {
        trusted = [...(trusted ?? []), readCaFile(caFile)];
      } catch (err) {
        throw new ConfigError(`cannot use CA file ${caFile}: ${err.message}`, { kind: 'config:ca-file', cause: err });
      }
    }
    if (signal?.aborted) throw aborted(signal);
    const engine = new Engine({ security, allowCleartextPassword });
    const client = new Client(INTERNAL, engine, { host, port, ca: trusted, timeout });
    if (signal) {
      const onAbort = () => client.#fail(aborted(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      client.#unwatch = () => signal.removeEventListener('abort', onAbort);
    }
    await client.#open(security === 'tls');
    return client;
  }

  /** The server's greeting text. */
  get greeting() {
    return this.#engine.greeting ?? '';
  }

  /** The latest capabilities (after TLS, when TLS was negotiated). */
  get capabilities() {
    return this.#engine.capabilities;
  }

  /** True when the connection is TLS (implicit, or after STLS). */
  get isTls() {
    return this.#engine.isTls;
  }

  /** Logs in with the strongest mechanism the server offers for a password (never APOP). */
  async login(user, password, { method = 'auto' } = {}) {
    await this.#issue((e) => e.authenticate({ username: user, password, method, host: this.#host, port: this.#port }));
  }

  /** `CAPA`: the capabilities, as `{ name, args, value? }`. */
  async capa() {
    return (await this.#issue((e) => e.capa())).capabilities;
  }

  /** `STAT`: messages and octets in the maildrop. */
  async stat() {
    const { count, size } = await this.#issue((e) => e.stat());
    return { count, size };
  }

  /** `LIST`: `[{ number, size }]`; with a number, that message's entry. */
  async list(number) {
    const reply = await this.#issue((e) => e.list(number));
    return number === undefined ? reply.entries : reply.entry;
  }

  /** `UIDL`: `[{ number, uid }]`; with a number, that message's entry. */
  async uidl(number) {
    const reply = await this.#issue((e) => e.uidl(number));
    return number === undefined ? reply.entries : reply.entry;
  }

  /** `RETR n`: the message, dot-unstuffed, CRLF line ends as sent. */
  retr(number) {
    return this.#collect((e) => e.retr(number));
  }

  /** `TOP n lines`: the headers and the first `lines` lines of the body. */
  top(number, lines) {
    return this.#collect((e) => e.top(number, lines));
  }

  /**
   * `RETR n` as a `ReadableStream` of `Uint8Array` chunks (also an async iterable), with
   * backpressure: the socket stops reading while about 1 MB waits unread. Cancelling the
   * stream discards the rest of the message. Read streams in the order they were asked for.
   */
  retrStream(number) {
    let controller;
    let cancelled = false;
    const stream = new ReadableStream(
      {
        start: (c) => {
          controller = c;
        },
        pull: () => this.#resumeFor(stream),
        cancel: () => {
          cancelled = true;
          this.#resumeFor(stream);
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: STREAM_HIGH_WATER }),
    );
    const onBody = (data) => {
      if (cancelled) return;
      controller.enqueue(data);
      if (controller.desiredSize <= 0) this.#pauseFor(stream);
    };
    this.#issue((e) => e.retr(number), onBody).then(
      () => {
        this.#resumeFor(stream);
        if (!cancelled) controller.close();
      },
      (err) => {
        this.#resumeFor(stream);
        if (!cancelled) controller.error(err);
      },
    );
    return stream;
  }

  /** `DELE n`: marks the message; the server deletes it at `quit()`. */
  async dele(number) {
    await this.#issue((e) => e.dele(number));
  }

  /** `RSET`: unmarks every deletion. */
  async rset() {
    await this.#issue((e) => e.rset());
  }

  /** `NOOP`. */
  async noop() {
    await this.#issue((e) => e.noop());
  }

  /** `QUIT`: the server commits the deletions; the connection closes. Resolves to its text. */
  async quit() {
    const { text } = await this.#issue((e) => e.quit());
    this.#socket?.end();
    return text;
  }

  /** Drops the connection without QUIT: nothing marked with `dele` is deleted. */
  close() {
    this.#fail(new ConfigError('the session was closed', { kind: 'usage:closed' }));
  }

  /** `await using client = await Client.connect(...)`: QUIT when the block ends. */
  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    if (this.#failure) return;
    try {
      await this.quit();
    } catch {
      this.close();
    }
  }

  // ---- the loop ---------------------------------------------------------------------------

  #open(implicitTls) {
    return new Promise((resolve, reject) => {
      this.#connecting = { resolve, reject };
      const events = {
        data: this.#onData,
        end: this.#onEnd,
        error: this.#onError,
        timeout: this.#onTimeout,
        secure: this.#onSecure,
      };
      try {
        this.#socket = open({ host: this.#host, port: this.#port, tls: implicitTls, ca: this.#ca, timeout: this.#timeout }, events);
      } catch (e) {
        this.#fail(e);
      }
    });
  }

  /** STLS was accepted: the transport runs the TLS handshake on the same connection. */
  #startTls() {
    this.#socket.startTls();
  }

  #onSecure = () => {
    if (this.#failure) return;
    if (this.#engine.phase === 'awaiting-tls') {
      try {
        this.#engine.tlsEstablished();
      } catch (e) {
        this.#fail(e);
        return;
      }
    }
    this.#pump();
    if (!this.#failure) this.#flush();
  };

  #onData = (chunk) => {
    if (this.#failure) return;
    // Node hands TLS data over one record (often 4 KB) at a time. Collect what arrives in
    // this turn of the event loop and feed it at once: one call into the engine, fewer and
    // larger body chunks, one write of the commands the replies let out.
    this.#incoming.push(chunk);
    this.#incomingBytes += chunk.length;
    if (this.#incomingBytes >= FEED_MAX) this.#feed();
    else if (!this.#feedQueued) {
      this.#feedQueued = true;
      this.#socket.defer(this.#feedQueuedInput);
    }
  };

  #feedQueuedInput = () => {
    this.#feedQueued = false;
    this.#feed();
  };

  #feed() {
    if (this.#failure || this.#incomingBytes === 0) return;
    const data = this.#incoming.length === 1 ? this.#incoming[0] : concat(this.#incoming, this.#incomingBytes);
    this.#incoming = [];
    this.#incomingBytes = 0;
    try {
      this.#engine.handleInput(data);
    } catch (e) {
      this.#fail(e);
      return;
    }
    this.#pump();
    if (!this.#failure) this.#flush();
  }

  /** Hands out every event the engine has. */
  #pump() {
    try {
      for (;;) {
        const events = this.#engine.pollEvents();
        if (events.length === 0) break;
        for (const ev of events) {
          if (ev.type === 'body') {
            this.#waiters.get(ev.id)?.onBody?.(ev.data);
          } else if (ev.type === 'completed') {
            const waiter = this.#waiters.get(ev.id);
            this.#waiters.delete(ev.id);
            if (ev.error) waiter?.reject(ev.error);
            else waiter?.resolve(ev.reply);
          } else if (ev.type === 'ready') {
            this.#connecting?.resolve();
            this.#connecting = null;
          } else if (ev.type === 'tls-ready') {
            // The engine stops reading at the STLS reply: nothing else is pending.
            this.#startTls();
            return;
          }
        }
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  #flush() {
    let bytes;
    while ((bytes = this.#engine.pollTransmit()) !== undefined) this.#socket.write(bytes);
  }

  /** Issues a command; resolves with its reply. Commands issued in one tick go out together. */
  #issue(command, onBody) {
    if (this.#failure) return Promise.reject(this.#failure);
    let id;
    try {
      id = command(this.#engine);
    } catch (e) {
      return Promise.reject(fromEngine(e));
    }
    return new Promise((resolve, reject) => {
      this.#waiters.set(id, { resolve, reject, onBody });
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => {
          this.#flushQueued = false;
          if (!this.#failure) {
            this.#flush();
            this.#pump();
            if (!this.#failure) this.#flush();
          }
        });
      }
    });
  }

  async #collect(command) {
    const chunks = [];
    let total = 0;
    await this.#issue(command, (data) => {
      chunks.push(data);
      total += data.length;
    });
    // Always a plain Uint8Array (never a Buffer), whatever the number of chunks.
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  #pauseFor(stream) {
    this.#pausedBy.add(stream);
    this.#socket?.pause();
  }

  #resumeFor(stream) {
    if (this.#pausedBy.delete(stream) && this.#pausedBy.size === 0 && !this.#failure) this.#socket?.resume();
  }

  #onEnd = () => {
    if (this.#failure) return;
    this.#feed();
    if (this.#failure) return;
    try {
      this.#engine.handleEof();
    } catch (e) {
      this.#fail(e);
      return;
    }
    this.#failure = new ConfigError('the session is closed', { kind: 'usage:closed' });
    this.#unwatch?.();
    this.#socket?.end();
  };

  #onError = (err) => {
    if (this.#failure) return;
    this.#fail(err);
  };

  #onTimeout = () => {
    if (this.#failure) return;
    // Idle with nothing asked, or paused because a stream's reader is slow: not the server's fault.
    if (!this.#connecting && (this.#waiters.size === 0 || this.#pausedBy.size > 0)) return;
    const doing = this.#connecting ? 'connecting' : 'waiting for the server';
    this.#fail(new TimeoutError(`timed out ${doing} (${this.#timeout} ms); the server stalled or the network is down, try again later`, { kind: 'net:timeout', temporary: true }));
  };

  #fail(error) {
    if (this.#failure) return;
    this.#failure = error;
    this.#unwatch?.();
    for (const waiter of this.#waiters.values()) waiter.reject(error);
    this.#waiters.clear();
    this.#connecting?.reject(error);
    this.#connecting = null;
    this.#pausedBy.clear();
    this.#socket?.destroy();
  }
}
