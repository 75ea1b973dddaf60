// A POP3 server whose certificate nobody trusts (the test CA's self-signed one), for "an
// untrusted certificate is a TlsError before any credential is sent" in every runtime: one
// implicit-TLS port, one plain port that offers and accepts STLS. Every line a client sends
// in the clear is appended to the log file, so a test can show no credential left. A third
// port injects a reply right behind STLS's +OK, in the same write (the NO STARTTLS attack).
//
//   node untrusted-server.mjs CA_DIR LOG_FILE   # prints {"tlsPort":..,"plainPort":..,"injectPort":..}

import net from 'node:net';
import tls from 'node:tls';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';

const [caDir, logFile] = process.argv.slice(2);
const identity = { key: readFileSync(`${caDir}/self-signed.key`), cert: readFileSync(`${caDir}/self-signed.pem`) };
writeFileSync(logFile, '');
const log = (what) => appendFileSync(logFile, `${what}\n`);

const secure = tls.createServer(identity, (socket) => {
  log('tls: handshake completed');
  socket.on('data', (d) => log(`tls: ${d.toString('latin1').trimEnd()}`));
});
secure.on('tlsClientError', () => log('tls: handshake failed'));

const plainServer = (inject) => net.createServer((socket) => {
  socket.on('error', () => {});
  socket.write('+OK untrusted test server\r\n');
  let buffered = '';
  const onData = (d) => {
    buffered += d.toString('latin1');
    for (let i; (i = buffered.indexOf('\n')) !== -1; ) {
      const line = buffered.slice(0, i).trimEnd();
      buffered = buffered.slice(i + 1);
      log(`plain: ${line}`);
      const verb = line.split(' ')[0].toUpperCase();
      if (verb === 'CAPA') socket.write('+OK\r\nSTLS\r\nUSER\r\nSASL PLAIN\r\nUIDL\r\n.\r\n');
      else if (verb === 'STLS') {
        socket.off('data', onData);
        if (inject) {
          socket.write('+OK begin TLS\r\n+OK injected before TLS\r\n');
          socket.on('data', (x) => log(`injected: ${x.toString('latin1').trimEnd()}`));
          return;
        }
        socket.write('+OK begin TLS\r\n', () => {
          const upgraded = new tls.TLSSocket(socket, { isServer: true, ...identity });
          let outcome = null;
          const settle = (what) => {
            if (outcome === null) log(`starttls: handshake ${(outcome = what)}`);
          };
          upgraded.on('secure', () => settle('completed'));
          upgraded.on('error', () => settle('failed'));
          // Some clients (Bun) close without an alert: no 'error' on this side.
          upgraded.on('close', () => settle('failed'));
          upgraded.on('data', (x) => log(`starttls: ${x.toString('latin1').trimEnd()}`));
        });
        return;
      } else socket.write('-ERR not here\r\n');
    }
  };
  socket.on('data', onData);
});

const plain = plainServer(false);
const inject = plainServer(true);
await Promise.all([secure, plain, inject].map((server) => new Promise((r) => server.listen(0, '127.0.0.1', r))));
console.log(JSON.stringify({ tlsPort: secure.address().port, plainPort: plain.address().port, injectPort: inject.address().port }));
