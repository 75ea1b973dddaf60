// The Node Client against the engine's own server role (`popwire/server`) on node:net and
// node:tls: every method, byte-exact bodies, STLS on the same socket, several sessions at
// once, a 100 MB message streamed with bounded memory, and the error classes.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

import { AbortError, Client, ConfigError, NetworkError, ProtocolError, ServerError, TimeoutError, TlsError } from 'popwire';
import { Maildrop } from 'popwire/server';
import { startServer, selfSignedCert } from './support/pop-server.mjs';
import { bigMessage, sized, trickyMessages } from './support/corpus.mjs';
import { everyMethod, severalSessions, streamBounded } from './support/exercise.mjs';

const PASSWORD = 'test-pw';

function maildropWith(user, messages) {
  const maildrop = new Maildrop();
  maildrop.addUser(user, PASSWORD);
  for (const m of messages) maildrop.addMessage(m);
  return maildrop;
}

describe('Client against popwire/server', () => {
  let cert;
  before(() => {
    cert = selfSignedCert();
  });

  for (const mode of ['plain', 'tls', 'starttls']) {
    test(`every method, byte-exact (${mode})`, async () => {
      const messages = trickyMessages();
      const maildrop = maildropWith('alice', messages);
      const uids = maildrop.uids();
      const server = await startServer(maildrop, { mode, ...cert });
      const security = mode === 'plain' ? 'none' : mode;
      const connect = () => Client.connect({ host: '127.0.0.1', port: server.port, security, ca: cert.cert, timeout: 10_000 });
      try {
        await everyMethod(connect, { user: 'alice', password: PASSWORD, messages, uids, tls: mode !== 'plain' });
        const kinds = server.events.map((e) => e.type);
        assert.ok(kinds.includes('committed') && kinds.includes('auth-failed'), kinds.join(' '));
        if (mode === 'starttls') assert.ok(kinds.includes('stls-requested'));
      } finally {
        await server.close();
      }
    });
  }

  test('several sessions at once', async () => {
    const maildrop = new Maildrop();
    const messages = sized(30, 6000, 7);
    for (const m of messages) maildrop.addMessage(m);
    const users = Array.from({ length: 8 }, (_, i) => ({ user: `user${i}`, password: `pw${i}`, messages }));
    for (const u of users) maildrop.addUser(u.user, u.password);
    const server = await startServer(maildrop, { mode: 'tls', ...cert });
    try {
      await severalSessions(() => Client.connect({ host: '127.0.0.1', port: server.port, ca: cert.cert }), users);
    } finally {
      await server.close();
    }
  });

  test('a 100 MB message streams with bounded memory', async () => {
    const MB = 100;
    const child = spawn(process.execPath, [fileURLToPath(new URL('./support/serve-big.mjs', import.meta.url)), String(MB)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const [line] = await once(child.stdout, 'data');
      const { port, expectedBytes, expectedHash } = JSON.parse(String(line));
      const client = await Client.connect({ host: '127.0.0.1', port, security: 'none', timeout: 30_000 });
      await client.login('big', 'big-pw');
      const [{ size }] = await client.list();
      assert.equal(size, expectedBytes);
      const grew = await streamBounded(client, 1, { expectedBytes, expectedHash, budget: 32 * 1024 * 1024 });
      console.log(`# 100 MB stream: memory grew by ${JSON.stringify(grew)}`);
      await client.quit();
    } finally {
      child.stdin.end();
      await once(child, 'exit');
    }
  });

  test('a stream cancelled early leaves the session usable', async () => {
    const messages = [bigMessage(4 * 1024 * 1024), 'Subject: two\n\nsecond\n'];
    const server = await startServer(maildropWith('carol', messages), { options: { allowCleartextPassword: true } });
    try {
      const client = await Client.connect({ host: '127.0.0.1', port: server.port, security: 'none' });
      await client.login('carol', PASSWORD);
      for await (const chunk of client.retrStream(1)) {
        assert.ok(chunk.length > 0);
        break;
      }
      assert.equal(Buffer.from(await client.retr(2)).toString(), 'Subject: two\r\n\r\nsecond\r\n');
      await client.quit();
    } finally {
      await server.close();
    }
  });
});

describe('Client errors', () => {
  test('a certificate nobody vouched for is a TlsError', async () => {
    const cert = selfSignedCert();
    const server = await startServer(new Maildrop(), { mode: 'tls', ...cert });
    try {
      await assert.rejects(Client.connect({ host: '127.0.0.1', port: server.port }), (e) => e instanceof TlsError && e.kind === 'tls:certificate' && e.errorClass === 'tls' && !e.temporary);
      // A certificate for another name.
      await assert.rejects(Client.connect({ host: 'localhost', port: server.port, ca: selfSignedCert().cert }), TlsError);
    } finally {
      await server.close();
    }
  });

  test('starttls against a server without STLS is a TlsError, and nothing is sent', async () => {
    const server = await startServer(maildropWith('dave', []));
    try {
      await assert.rejects(Client.connect({ host: '127.0.0.1', port: server.port, security: 'starttls' }), (e) => e instanceof TlsError && e.kind === 'policy:tls-unavailable');
    } finally {
      await server.close();
    }
  });

  test('a cleartext password without TLS is refused unless allowed', async () => {
    const server = await startServer(maildropWith('erin', []), { options: { allowCleartextPassword: true, mechanisms: ['PLAIN'] } });
    try {
      const client = await Client.connect({ host: '127.0.0.1', port: server.port, security: 'none' });
      await assert.rejects(client.login('erin', PASSWORD), (e) => e instanceof ConfigError && e.kind === 'policy:cleartext-forbidden');
      client.close();
      const allowed = await Client.connect({ host: '127.0.0.1', port: server.port, security: 'none', allowCleartextPassword: true });
      await allowed.login('erin', PASSWORD);
      await allowed.quit();
    } finally {
      await server.close();
    }
  });

  test('bytes injected after the STLS reply end the session with a ProtocolError', async () => {
    // A hostile server: +OK to STLS and, in the same write, a forged reply.
    const hostile = net.createServer((s) => {
      s.write('+OK hello\r\n');
      s.on('data', (d) => {
        const line = String(d);
        if (line.startsWith('CAPA')) s.write('+OK\r\nSTLS\r\nUSER\r\n.\r\n');
        else if (line.startsWith('STLS')) s.write('+OK go ahead\r\n+OK forged\r\n');
      });
      s.on('error', () => {});
    });
    await new Promise((r) => hostile.listen(0, '127.0.0.1', r));
    try {
      await assert.rejects(
        Client.connect({ host: '127.0.0.1', port: hostile.address().port, security: 'starttls', timeout: 5000 }),
        (e) => e instanceof ProtocolError && e.kind === 'protocol:injection-after-stls',
      );
    } finally {
      hostile.close();
    }
  });

  test('a silent server is a TimeoutError', async () => {
    const silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const started = Date.now();
      await assert.rejects(Client.connect({ host: '127.0.0.1', port: silent.address().port, security: 'none', timeout: 300 }), (e) => e instanceof TimeoutError && e.errorClass === 'timeout' && e.temporary);
      assert.ok(Date.now() - started < 5000);
    } finally {
      silent.close();
    }
  });

  test('an aborted signal is an AbortError (class cancelled)', async () => {
    const silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    const isAbort = (e) => e instanceof AbortError && e.name === 'AbortError' && e.errorClass === 'cancelled' && e.kind === 'cancelled' && !e.temporary;
    try {
      const port = silent.address().port;
      await assert.rejects(Client.connect({ host: '127.0.0.1', port, security: 'none', signal: AbortSignal.abort() }), isAbort);
      const controller = new AbortController();
      const connecting = Client.connect({ host: '127.0.0.1', port, security: 'none', timeout: 10_000, signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(connecting, isAbort);
    } finally {
      silent.close();
    }
  });

  test('connection and configuration failures: NetworkError, ConfigError', async () => {
    const probe = net.createServer();
    await new Promise((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address();
    await new Promise((r) => probe.close(r));
    // adapter-situations.txt: no connection made is network and permanent.
    await assert.rejects(Client.connect({ host: '127.0.0.1', port, security: 'none' }), (e) => e instanceof NetworkError && e.kind === 'net:connect' && e.errorClass === 'network' && !e.temporary);
    // With implicit TLS too: no TCP connection is not a TLS failure.
    await assert.rejects(Client.connect({ host: '127.0.0.1', port, security: 'tls' }), (e) => e instanceof NetworkError && e.kind === 'net:connect');
    await assert.rejects(Client.connect({ host: 'no-such-host.invalid', security: 'none' }), (e) => e instanceof NetworkError && e.kind === 'net:resolve' && !e.temporary);
    await assert.rejects(Client.connect({ host: '127.0.0.1', caFile: '/nonexistent/ca.pem' }), (e) => e instanceof ConfigError && e.kind === 'config:ca-file' && e.errorClass === 'config');
  });

  test('a server closing mid-body fails the pending command', async () => {
    const rude = net.createServer((s) => {
      s.write('+OK hi\r\n');
      s.on('data', (d) => {
        const line = String(d);
        if (line.startsWith('CAPA')) s.write('+OK\r\nUSER\r\n.\r\n');
        else if (line.startsWith('USER')) s.write('+OK\r\n');
        else if (line.startsWith('PASS')) s.write('+OK\r\n');
        else if (line.startsWith('RETR')) s.end('+OK\r\npartial line\r\n');
      });
      s.on('error', () => {});
    });
    await new Promise((r) => rude.listen(0, '127.0.0.1', r));
    try {
      const client = await Client.connect({ host: '127.0.0.1', port: rude.address().port, security: 'none', allowCleartextPassword: true });
      await client.login('x', 'y');
      // The core classes a connection ending mid-reply as a dropped connection: network, temporary.
      await assert.rejects(client.retr(1), (e) => e instanceof NetworkError && e.errorClass === 'network' && e.temporary && e.kind === 'protocol:unexpected-eof');
      await assert.rejects(client.noop(), NetworkError);
    } finally {
      rude.close();
    }
  });

  test('-ERR carries the response code', async () => {
    const busy = net.createServer((s) => {
      s.write('+OK hi\r\n');
      s.on('data', (d) => {
        const line = String(d);
        if (line.startsWith('CAPA')) s.write('+OK\r\nUSER\r\nRESP-CODES\r\n.\r\n');
        else if (line.startsWith('USER')) s.write('+OK\r\n');
        else if (line.startsWith('PASS')) s.write('-ERR [IN-USE] maildrop locked\r\n');
      });
      s.on('error', () => {});
    });
    await new Promise((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const client = await Client.connect({ host: '127.0.0.1', port: busy.address().port, security: 'none', allowCleartextPassword: true });
      await assert.rejects(client.login('x', 'y'), (e) => e instanceof ServerError && e.code === 'IN-USE' && e.temporary && e.text === 'maildrop locked');
      client.close();
    } finally {
      busy.close();
    }
  });
});
