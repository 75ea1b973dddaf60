// What the runtime suites set up outside the runtime under test (through Node's APIs, which
// Deno and Bun provide): the test Dovecot and a seeded mailbox, the untrusted-certificate
// server, a closed port, and the vectors. `prepare()` returns the `p` that checks.mjs takes.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { dovecot, newUser, seed } from '../test/support/dovecot.mjs';
import { sized, trickyMessages, wireForm } from '../test/support/corpus.mjs';

const VECTORS = fileURLToPath(new URL('../../tests/vectors/', import.meta.url));

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** `[name, text]` of every transcript vector. */
export function vectors() {
  return readdirSync(VECTORS)
    .filter((f) => f.endsWith('.pop3'))
    .sort()
    .map((f) => [f, readFileSync(VECTORS + f, 'utf8')]);
}

function closedPort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function startUntrusted(caDir, log) {
  const script = fileURLToPath(new URL('../test/support/untrusted-server.mjs', import.meta.url));
  // Node from PATH: the server is the same whichever runtime is under test.
  const child = spawn('node', [script, caDir, log], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ child, ports: JSON.parse(out) });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`untrusted-server.mjs exited (${code})`)));
  });
}

/**
 * Seeds a mailbox for `tag` (the edge-case corpus, a 1.2 MB message, and a 1 MB message last)
 * and starts the untrusted server. `ca`: false when the runtime takes no per-connection CA.
 */
export async function prepare(tag, { ca = true } = {}) {
  const d = dovecot();
  const user = newUser(tag);
  const messages = [...trickyMessages(), ...sized(1, 1 << 20, 17)];
  const uids = seed(d, user, messages);
  // Dovecot's LIST size is the file name's W= (it does not count the CRLF it adds).
  const sizes = uids.map((name) => Number(/,W=(\d+)/.exec(name)[1]));
  const hashes = await Promise.all(messages.map((m) => sha256(wireForm(m))));
  const dir = mkdtempSync(join(tmpdir(), 'pwjs-untrusted-'));
  const log = join(dir, 'log');
  const untrusted = await startUntrusted(d.caDir, log);
  const caText = readFileSync(d.caFile, 'utf8');
  const p = {
    host: d.host,
    tlsPort: d.tlsPort,
    plainPort: d.plainPort,
    ca: ca ? caText : undefined,
    caText,
    user,
    password: d.password,
    uids,
    sizes,
    hashes,
    untrusted: untrusted.ports,
    closedPort: await closedPort(),
  };
  return {
    p,
    caFile: d.caFile,
    /** What the untrusted server saw from a client, once its handshake failed (then clears
     * the log): `[]` if nothing came within 5 s. */
    async untrustedSaw() {
      for (let waited = 0; waited < 5000; waited += 50) {
        const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
        if (lines.some((l) => l.endsWith('handshake failed') || l.endsWith('handshake completed'))) {
          writeFileSync(log, '');
          return lines;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      return [];
    },
    stop() {
      untrusted.child.kill();
      rmSync(dir, { recursive: true, force: true });
      d.stop();
    },
  };
}

/** What a client sent the untrusted server (the handshake's outcome left out: workerd finishes
 * the handshake, then checks the certificate and closes). */
export const sent = (lines) => lines.filter((l) => !/handshake (failed|completed)$/.test(l));

/** What it may send: the negotiation in the clear, never a credential, nothing over TLS. */
export const UNTRUSTED_SEES = {
  tls: [],
  starttls: ['plain: CAPA', 'plain: STLS'],
};
