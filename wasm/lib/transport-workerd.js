// The Client's socket under workerd (Cloudflare Workers): `connect()` from `cloudflare:sockets`
// with `secureTransport: 'starttls'`, and `startTls()` after STLS. Implicit TLS also connects
// with 'starttls' and upgrades once TCP is up: with 'on', workerd reports an untrusted
// certificate as "cannot connect", indistinguishable from a closed port.
// workerd verifies certificates against its own trust store (its config's `trustedCertificates`
// locally; only public CAs in production), so `ca`/`caFile` are refused with a ConfigError.

import { connect } from 'cloudflare:sockets';

import { ConfigError, NetworkError, TlsError } from './errors.js';

const NO_CUSTOM_CA =
  "under workerd a CA cannot be given per connection (ca, caFile): Cloudflare's Workers accept " +
  'only publicly trusted certificates; locally, add the CA to workerd\'s trusted certificates ' +
  '(tlsOptions.trustedCertificates; wrangler dev and miniflare read NODE_EXTRA_CA_CERTS)';

/** Workers have no file system. */
export function readCaFile() {
  throw new ConfigError(NO_CUSTOM_CA, { kind: 'config:ca-file' });
}

/** Connects to `host`:`port` (TLS from the first byte when `tls`); see lib/client.js. */
export function open({ host, port, tls, ca, timeout }, events) {
  if (ca !== undefined) throw new ConfigError(NO_CUSTOM_CA, { kind: 'config:ca-file' });
  return new WorkerdSocket({ host, port, timeout }, tls, events);
}

function connectError(err, host, port) {
  // Workers refuse port 25, Cloudflare's own addresses and, in production, private ones; the
  // runtime's text names the reason.
  return new NetworkError(
    `cannot connect to ${host} port ${port}: ${err?.message ?? err}; check the server name and port ` +
      '(Workers cannot reach port 25, Cloudflare addresses or private networks)',
    // No connection was made: retrying the same call will not help (adapter-situations.txt).
    { kind: 'net:connect', temporary: false, cause: err },
  );
}

function tlsError(err, host) {
  // workerd logs why a handshake failed (an untrusted certificate: "TLS peer's certificate is
  // not trusted") but hands JavaScript only "internal error" or an end of stream.
  const text = err === undefined ? 'the connection closed during the handshake' : String(err?.message ?? err);
  return new TlsError(
    `TLS with ${host} failed: ${text}; workerd does not say why (its log does): check the server name, ` +
      "and that the certificate chains to a CA workerd trusts",
    { kind: 'tls:failed', cause: err },
  );
}

class WorkerdSocket {
  #options;
  #events;
  #socket;
  #reader = null;
  #writer = null;
  /** Bumped when the socket is replaced by its TLS upgrade: the old read loop stops. */
  #generation = 0;
  #tls;
  #handshaking;
  #received = false;
  #done = false;
  #paused = false;
  #resume = null;
  #timer = null;

  constructor(options, implicitTls, events) {
    this.#options = options;
    this.#events = events;
    this.#tls = false;
    this.#handshaking = false;
    let socket;
    try {
      socket = connect({ hostname: options.host, port: options.port }, { secureTransport: 'starttls', allowHalfOpen: false });
    } catch (err) {
      throw connectError(err, options.host, options.port);
    }
    if (implicitTls) {
      this.#socket = socket;
      this.#arm();
      socket.opened.then(
        () => {
          if (!this.#done) this.startTls();
        },
        (err) => this.#failed(err, 0),
      );
    } else {
      this.#use(socket);
    }
  }

  /** Runs `fn` later, once TLS is up, so the Client feeds the engine the reads that are ready
   * together (about 4 KB each). Before TLS at once: STLS's +OK calls for `startTls()`, and
   * workerd cannot release a reader with a read outstanding. */
  defer(fn) {
    if (this.#tls && !this.#handshaking) setTimeout(fn, 0);
    else fn();
  }

  write(bytes) {
    if (this.#done) return;
    this.#arm();
    this.#writer.write(bytes).catch((err) => this.#failed(err, this.#generation));
  }

  pause() {
    this.#paused = true;
  }

  resume() {
    this.#paused = false;
    this.#resume?.();
    this.#resume = null;
  }

  end() {
    this.#close();
  }

  destroy() {
    this.#close();
  }

  /** Runs the TLS handshake on the connection (after STLS); `secure()` or `error()` follows. */
  startTls() {
    // Release the plain socket's streams first: startTls() takes them over. Bytes the server
    // sent after its +OK were already handed to the engine, which rejects them as an injection.
    this.#generation++;
    this.#reader?.releaseLock();
    this.#writer?.releaseLock();
    let secure;
    try {
      secure = this.#socket.startTls();
    } catch (err) {
      this.#events.error(tlsError(err, this.#options.host));
      this.#close();
      return;
    }
    this.#tls = true;
    this.#handshaking = true;
    this.#received = false;
    this.#use(secure);
  }

  #use(socket) {
    this.#socket = socket;
    this.#writer = socket.writable.getWriter();
    this.#reader = socket.readable.getReader();
    const generation = this.#generation;
    this.#arm();
    socket.opened.then(
      () => {
        if (generation !== this.#generation || this.#done || !this.#tls) return;
        // `opened` settles before the handshake: it runs with the first write or read, and
        // failures show up there (still `#handshaking` until the first bytes arrive).
        this.#events.secure();
      },
      (err) => this.#failed(err, generation),
    );
    this.#read(generation);
  }

  async #read(generation) {
    const reader = this.#reader;
    try {
      for (;;) {
        if (this.#paused) await new Promise((resolve) => (this.#resume = resolve));
        if (generation !== this.#generation || this.#done) return;
        const { value, done } = await reader.read();
        if (generation !== this.#generation || this.#done) return;
        if (done) {
          if (this.#handshaking) {
            this.#failed(undefined, generation);
            return;
          }
          this.#disarm();
          this.#events.end();
          return;
        }
        this.#received = true;
        this.#handshaking = false;
        this.#arm();
        this.#events.data(value);
      }
    } catch (err) {
      this.#failed(err, generation);
    }
  }

  #failed(err, generation) {
    if (generation !== this.#generation || this.#done) return;
    const { host, port } = this.#options;
    let error;
    if (this.#handshaking && !this.#received) {
      error = tlsError(err, host);
    } else if (generation === 0 && !this.#received) {
      error = connectError(err, host, port);
    } else {
      error = new NetworkError(`connection error: ${err?.message ?? err}`, { kind: 'net:io', temporary: true, cause: err });
    }
    this.#close();
    this.#events.error(error);
  }

  #arm() {
    clearTimeout(this.#timer);
    // Idle with nothing to do is the Client's call, as with Node's socket timeout.
    this.#timer = setTimeout(() => this.#events.timeout(), this.#options.timeout);
  }

  #disarm() {
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  #close() {
    if (this.#done) return;
    this.#done = true;
    this.#disarm();
    this.#socket.close().catch(() => {});
  }
}
