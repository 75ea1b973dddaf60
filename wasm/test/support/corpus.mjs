// Test mail (after tests/src/corpus.rs): edge cases, deterministic bulk messages, and the form a
// client must store them in after RETR (`wireForm`).

const enc = new TextEncoder();

function cat(...parts) {
  const arrays = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function headers(id, subject) {
  return (
    'Return-Path: <sender@example.com>\n' +
    'From: Popwire Sender <sender@example.com>\n' +
    'To: Popwire Test <test@example.com>\n' +
    `Subject: ${subject}\n` +
    'Date: Mon, 01 Jan 2024 12:00:00 +0000\n' +
    `Message-ID: <${id}@popwire.test>\n` +
    'MIME-Version: 1.0\n' +
    'Content-Type: text/plain; charset=utf-8\n' +
    'Content-Transfer-Encoding: 8bit\n' +
    '\n'
  );
}

/** SplitMix64 on BigInt: deterministic and good enough for test text. */
function rng(seed) {
  let s = BigInt.asUintN(64, BigInt(seed));
  return (n) => {
    s = BigInt.asUintN(64, s + 0x9e3779b97f4a7c15n);
    let z = s;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return Number((z ^ (z >> 31n)) % BigInt(n));
  };
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Edge cases: dot lines, 8-bit bytes, CRLF, mixed endings, a 25 KB line, empty body, no final
 * newline, a lone-dot last line, and a 1.2 MB message. */
export function trickyMessages() {
  const v = [];
  v.push(cat(headers('tricky-0', 'dot lines'), 'first line\n.leading dot\n..two dots\n...\n.\nafter a lone dot\n. dot space\nend with dot.\nlast\n'));
  v.push(cat('Subject: 8-bit ', Uint8Array.of(0xc3, 0xa9, 0x74, 0xe9, 0x74, 0xe9), '\nFrom: sender@example.com\n\nLatin-1: ', Uint8Array.of(0xe9, 0xe8, 0xfc, 0xff), '\n', Uint8Array.of(0x80, 0x81, 0xfe), ' bytes\n'));
  v.push(wireForm(cat(headers('tricky-2', 'stored with CRLF'), 'crlf line\n.dot line\n.\n\nend\n')));
  v.push(cat(headers('tricky-3', 'mixed endings'), 'lf line\ncrlf line\r\n.dot crlf\r\n.dot lf\n\r\nend\n'));
  v.push(cat(headers('tricky-4', 'a 25 KB line'), 'before\n', 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(700).slice(0, 25000), '\nafter\n'));
  v.push(cat(headers('tricky-5', 'empty body')));
  v.push(cat(headers('tricky-6', 'no final newline'), 'line one\nlast line without newline'));
  v.push(cat(headers('tricky-7', 'ends with a lone dot'), 'text\n.\n'));
  v.push(cat(headers('tricky-8', 'dot first, blank lines last'), '.starts with a dot\nbody\n\n\n'));
  const next = rng(0x706f7077);
  const lines = [];
  let size = 0;
  for (let i = 0; size < 1_200_000; i++) {
    let line;
    if (i % 97 === 0) line = '.\n';
    else if (i % 97 === 1) line = '..dot-stuffed on the wire\n';
    else {
      line = '';
      for (let k = 0; k < 72; k++) line += ALNUM[next(ALNUM.length)];
      line += '\n';
    }
    lines.push(line);
    size += line.length;
  }
  v.push(cat(headers('tricky-9', 'a 1.2 MB message'), lines.join('')));
  return v;
}

const WORDS = ['the', 'mail', 'server', 'client', 'message', 'retrieve', 'pipeline', 'octets', 'unique', 'mailbox', 'session', 'caf\u00e9', 'gr\u00fc\u00dfe', '\u2192'];

/** `n` deterministic messages of exactly `size` bytes (LF line ends, some dot lines). */
export function sized(n, size, seed) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const next = rng(seed * 1000003 + i);
    const head = enc.encode(headers(`sized-${seed}-${i}-${size}`, `message ${i} of ${n} (${size} bytes)`));
    const msg = new Uint8Array(Math.max(size, head.length + 6));
    msg.set(head);
    let at = head.length;
    const room = msg.length - 1;
    while (at < room) {
      const r = next(100);
      let line = r < 4 ? '.' + WORDS[next(WORDS.length)] : r < 6 ? '.' : '';
      const target = 20 + next(60);
      while (line.length < target) line += (line ? ' ' : '') + WORDS[next(WORDS.length)];
      const bytes = enc.encode(line + '\n');
      if (at + bytes.length > room) break;
      msg.set(bytes, at);
      at += bytes.length;
    }
    msg.fill(0x7a, at, room);
    msg[room] = 10;
    out.push(msg);
  }
  return out;
}

/** What RETR must give for stored `msg`: bare LF becomes CRLF, and a final CRLF is added when
 * the last line has none. */
export function wireForm(msg) {
  const out = [];
  let prev = 0;
  for (const b of msg) {
    if (b === 10 && prev !== 13) out.push(13);
    out.push(b);
    prev = b;
  }
  if (out.length === 0 || out[out.length - 1] !== 10) out.push(13, 10);
  return Uint8Array.from(out);
}

/** A large message of repeated dot-stuffed lines, `bytes` long, in pieces of about 1 MiB (so a
 * test can write or hash 100 MB without holding it). */
export function* bigMessageChunks(bytes) {
  const line = enc.encode('.this line starts with a dot and is dot-stuffed on the wire 0123456789\n');
  const head = enc.encode(headers('big', `${bytes} bytes`));
  yield head;
  let left = bytes - head.length;
  const perPiece = Math.floor((1 << 20) / line.length);
  const piece = new Uint8Array(perPiece * line.length);
  for (let i = 0; i < perPiece; i++) piece.set(line, i * line.length);
  while (left > piece.length) {
    yield piece;
    left -= piece.length;
  }
  // The tail: whole lines, then z...z and a final LF.
  const tail = new Uint8Array(left);
  const lines = Math.floor((left - 1) / line.length);
  for (let i = 0; i < lines; i++) tail.set(line, i * line.length);
  tail.fill(0x7a, lines * line.length, left - 1);
  tail[left - 1] = 10;
  yield tail;
}

/** `bigMessageChunks(bytes)` as one buffer. */
export function bigMessage(bytes) {
  const msg = new Uint8Array(bytes);
  let at = 0;
  for (const piece of bigMessageChunks(bytes)) {
    msg.set(piece, at);
    at += piece.length;
  }
  return msg;
}
