// The Client's socket for Node, Deno and Bun: node:net, and node:tls for implicit TLS and for
// the handshake after STLS on the same socket. Deno and Bun run it through their Node
// compatibility (measured: no native transport was faster; BENCHMARKS.md).

import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

import { NetworkError, ProtocolError, TimeoutError, TlsError } from './errors.js';

/** Reads a PEM file (the `caFile` option). */
export function readCaFile(path) {
  return readFileSync(path, 'utf8');
}

/** Error codes that mean no TCP connection was made (so not a TLS failure). */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

function tlsError(err, host) {
  const certificate = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(err.code ?? '');
  const kind = certificate ? 'tls:certificate' : 'tls:failed';
  const hint = certificate ? '; check the server name and the CA (ca, caFile)' : '';
  return new TlsError(`TLS with ${host} failed: ${err.message}${hint}`, { kind, cause: err });
}

/** A read or write on the open connection failed, classed as tests/vectors/classes/
 * adapter-situations.txt says: a timed-out socket is a timeout, a refused permission is
 * permanent, anything else a dropped connection (temporary). */
function ioError(err) {
  if (err.code === 'ETIMEDOUT') {
    return new TimeoutError(`connection timed out: ${err.message}`, { kind: 'net:timeout', temporary: true, cause: err });
  }
  const temporary = err.code !== 'EACCES' && err.code !== 'EPERM';
  return new NetworkError(`connection error: ${err.message}`, { kind: 'net:io', temporary, cause: err });
}

/** Connects to `host`:`port` (TLS from the first byte when `tls`); see lib/client.js. */
export function open({ host, port, tls: implicitTls, ca, timeout }, events) {
  return new NodeSocket({ host, port, ca, timeout }, implicitTls, events);
}

class NodeSocket {
  #socket;
  #options;
  #events;
  #handshaking;
  #connected = false;

  constructor(options, implicitTls, events) {
    this.#options = options;
    this.#events = events;
    this.#handshaking = implicitTls;
    const target = { host: options.host, port: options.port };
    this.#attach(implicitTls ? tls.connect(this.#tlsOptions(target)) : net.connect(target));
  }

  /** Runs `fn` after the I/O callbacks of this turn of the event loop. */
  defer(fn) {
    setImmediate(fn);
  }

  write(bytes) {
    this.#socket.write(bytes);
  }

  pause() {
    this.#socket.pause();
  }

  resume() {
    this.#socket.resume();
  }

  end() {
    this.#socket.end();
  }

  destroy() {
    this.#socket.destroy();
  }

  /** Runs the TLS handshake on the connection (after STLS); `secure()` or `error()` follows. */
  startTls() {
    const plain = this.#socket;
    plain.pause();
    this.#detach(plain);
    // Bytes that arrived after the +OK and before the handshake would be read as TLS records
    // (or worse, as replies): the NO STARTTLS injection. The engine saw none; nor may Node.
    if (plain.readableLength > 0) {
      const n = plain.readableLength;
      plain.destroy();
      this.#events.error(new ProtocolError(`${n} octets arrived after the STLS reply and before TLS: possible injection attack`, { kind: 'protocol:injection-after-stls' }));
      return;
    }
    this.#handshaking = true;
    this.#attach(tls.connect(this.#tlsOptions({ socket: plain })));
  }

  #tlsOptions(target) {
    const { host, ca } = this.#options;
    // Node refuses an IP address as SNI; the certificate is still checked against `host`.
    const servername = net.isIP(host) ? undefined : host;
    return { ...target, host, servername, ca };
  }

  #attach(socket) {
    this.#socket = socket;
    socket.setNoDelay?.(true);
    socket.setTimeout(this.#options.timeout);
    socket.on('data', this.#events.data);
    socket.on('end', this.#events.end);
    socket.on('error', this.#onError);
    socket.on('timeout', this.#events.timeout);
    socket.on('close', this.#onClose);
    socket.once('connect', this.#onConnect);
    if (this.#handshaking) socket.once('secureConnect', this.#onSecure);
  }

  #detach(socket) {
    socket.off('data', this.#events.data);
    socket.off('end', this.#events.end);
    socket.off('error', this.#onError);
    socket.off('timeout', this.#events.timeout);
    socket.off('close', this.#onClose);
    socket.off('connect', this.#onConnect);
    socket.setTimeout(0);
    socket.on('error', () => {});
  }

  #onConnect = () => {
    this.#connected = true;
  };

  #onSecure = () => {
    this.#connected = true;
    this.#handshaking = false;
    this.#events.secure();
  };

  #onError = (err) => {
    const { host, port } = this.#options;
    const unreachable = !this.#connected && CONNECT_FAILURES.has(err.code);
    if (this.#handshaking && !unreachable) {
      this.#events.error(tlsError(err, host));
    } else if (!this.#connected) {
      const resolve = err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN';
      const message = resolve
        ? `cannot resolve ${host}: ${err.message}; check the server name`
        : `cannot connect to ${host} port ${port}: ${err.message}; check the server name, port and network`;
      // No connection was made: retrying the same call will not help (adapter-situations.txt).
      this.#events.error(new NetworkError(message, { kind: resolve ? 'net:resolve' : 'net:connect', temporary: false, cause: err }));
    } else {
      this.#events.error(ioError(err));
    }
  };

  #onClose = () => {
    this.#events.error(new NetworkError('the connection closed', { kind: 'net:io', temporary: true }));
  };
}
