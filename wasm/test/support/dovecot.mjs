// The test Dovecot (tests/dovecot/README.md): the instance named by POPWIRE_DOVECOT (an env
// file written by `popwire-fixture start`), or a private one started in a temporary
// directory and stopped when the process exits.

import { execFileSync } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKSPACE = fileURLToPath(new URL('../../../', import.meta.url));

function parseEnv(path) {
  const env = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.startsWith('export ')) continue;
    const eq = line.indexOf('=');
    env[line.slice(7, eq).replace('POPWIRE_DOVECOT_', '')] = line.slice(eq + 1).trim();
  }
  return env;
}

function fixture(command, dir) {
  return execFileSync('cargo', ['run', '-q', '-p', 'popwire-tests', '--bin', 'popwire-fixture', '--', command, '--dir', dir], {
    cwd: WORKSPACE,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

let shared = null;

/**
 * `{ host, plainPort, tlsPort, caFile, caDir, password, home, mailUid, mailGid }`, started on
 * first use. `stop()` stops an instance this process started (no-op otherwise).
 */
export function dovecot() {
  if (shared) return shared;
  let envFile = process.env.POPWIRE_DOVECOT;
  let ownDir = null;
  if (!envFile) {
    // Short: Dovecot's Unix socket paths are limited to ~100 bytes.
    ownDir = mkdtempSync('/tmp/pwjs-');
    envFile = fixture('start', ownDir);
    const stop = () => {
      try {
        fixture('stop', ownDir);
      } finally {
        rmSync(ownDir, { recursive: true, force: true });
      }
    };
    process.once('exit', () => {
      if (ownDir) stop();
    });
    shared = { stop: () => { stop(); ownDir = null; } };
  } else {
    shared = { stop: () => {} };
  }
  const env = parseEnv(envFile);
  Object.assign(shared, {
    host: env.HOST,
    plainPort: Number(env.PLAIN_PORT),
    tlsPort: Number(env.TLS_PORT),
    caFile: env.CA_FILE,
    caDir: env.CA_DIR,
    password: env.PASSWORD,
    home: env.HOME,
    mailUid: env.MAIL_UID === undefined ? undefined : Number(env.MAIL_UID),
    mailGid: env.MAIL_GID === undefined ? undefined : Number(env.MAIL_GID),
  });
  return shared;
}

let users = 0;

/** A user name nobody else uses: `js-<tag>-<pid>-<n>`. */
export function newUser(tag) {
  return `js-${tag}-${process.pid}-${++users}-${Date.now() % 100000}`;
}

let clock = 0;

function maildir(d, user) {
  const md = join(d.home, user, 'Maildir');
  const dirs = [join(d.home, user), md, join(md, 'cur'), join(md, 'new'), join(md, 'tmp')];
  for (const dir of dirs) mkdirSync(dir, { recursive: true });
  if (process.getuid?.() === 0 && d.mailUid !== undefined) {
    for (const dir of dirs) chownSync(dir, d.mailUid, d.mailGid);
  }
  return md;
}

/** A Maildir file name for a message of `size` bytes with `bareLf` LFs not after a CR. */
function fileName(size, bareLf, n) {
  // Dovecot orders new mail by (secs, usecs): keep them strictly increasing.
  clock = Math.max(clock + 1, Date.now() * 1000);
  return `${Math.floor(clock / 1e6)}.M${clock % 1e6}P${process.pid}Q${n}.js,S=${size},W=${size + bareLf}`;
}

/** Writes `messages` (Uint8Array each) into `user`'s Maildir/new, in this order; returns their
 * file names (Dovecot's UIDL). */
export function seed(d, user, messages) {
  const md = maildir(d, user);
  const names = [];
  messages.forEach((msg, n) => {
    let bareLf = 0;
    for (let i = 0; i < msg.length; i++) if (msg[i] === 10 && (i === 0 || msg[i - 1] !== 13)) bareLf++;
    const name = fileName(msg.length, bareLf, n);
    writeFileSync(join(md, 'tmp', name), msg, { mode: 0o644 });
    renameSync(join(md, 'tmp', name), join(md, 'new', name));
    names.push(name);
  });
  return names;
}

/** Writes one message given as pieces (so 100 MB need not be in memory); returns its name. */
export function seedPieces(d, user, pieces) {
  const md = maildir(d, user);
  const tmp = join(md, 'tmp', `seeding-${process.pid}-${++users}`);
  const fd = openSync(tmp, 'w', 0o644);
  let size = 0;
  let bareLf = 0;
  let prev = 0;
  try {
    for (const piece of pieces) {
      for (let i = piece.indexOf(10); i !== -1; i = piece.indexOf(10, i + 1)) {
        if ((i > 0 ? piece[i - 1] : prev) !== 13) bareLf++;
      }
      if (piece.length > 0) prev = piece[piece.length - 1];
      writeSync(fd, piece);
      size += piece.length;
    }
  } finally {
    closeSync(fd);
  }
  const name = fileName(size, bareLf, 0);
  renameSync(tmp, join(md, 'new', name));
  return name;
}
