// A tiny POP3 server on node:net (and node:tls) around the engine's server role: the stand-in
// for `popwire serve`. Plain, implicit TLS, or plain with STLS.

import net from 'node:net';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Server } from 'popwire/server';

/** A throwaway CA-less certificate for `localhost` / 127.0.0.1: `{ key, cert }` (PEM). */
export function selfSignedCert() {
  const dir = mkdtempSync(join(tmpdir(), 'pwjs-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs one session of `server` (a popwire `Server`) on `socket`, with write backpressure. */
function serve(socket, server, { key, cert, events }) {
  let waiting = false;
  let upgrading = false;
  const pump = () => {
    while (!waiting && !upgrading) {
      const bytes = server.pollTransmit();
      if (bytes === undefined) break;
      if (!socket.write(bytes)) {
        waiting = true;
        socket.once('drain', () => {
          waiting = false;
          pump();
        });
      }
    }
    let ev;
    while ((ev = server.pollEvent()) !== undefined) {
      events.push(ev);
      if (ev.type === 'stls-requested') upgrade();
    }
    if (server.isClosed && !waiting && !upgrading) socket.end();
  };
  const upgrade = () => {
    // The +OK is written; from here the socket belongs to TLS.
    upgrading = true;
    socket.removeAllListeners('data');
    const secure = new tls.TLSSocket(socket, { isServer: true, key, cert });
    secure.on('secure', () => {
      server.tlsEstablished();
      upgrading = false;
      socket = secure;
      pump();
    });
    secure.on('data', (chunk) => {
      server.handleInput(chunk);
      pump();
    });
    secure.on('error', () => secure.destroy());
  };
  socket.on('data', (chunk) => {
    server.handleInput(chunk);
    pump();
  });
  socket.on('error', () => socket.destroy());
  pump();
}

/**
 * Listens on 127.0.0.1 (a free port). `mode`: `'plain'`, `'tls'` or `'starttls'`; `options`:
 * the Server's. Returns `{ port, events, close() }`.
 */
export async function startServer(maildrop, { mode = 'plain', options = {}, key, cert } = {}) {
  const events = [];
  const sessionOptions = { ...options, tlsActive: mode === 'tls', offerStls: mode === 'starttls' };
  const onConnection = (socket) => serve(socket, new Server(maildrop, sessionOptions), { key, cert, events });
  const listener = mode === 'tls' ? tls.createServer({ key, cert }, onConnection) : net.createServer(onConnection);
  const sockets = new Set();
  listener.on(mode === 'tls' ? 'secureConnection' : 'connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return {
    port: listener.address().port,
    events,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        listener.close(resolve);
      }),
  };
}
