// The transcript replay of core/tests/transcripts.rs (format: tests/vectors/README.md) over
// `Engine`, with no import and no runtime API: Node, Deno, Bun and workerd run it alike, each
// handing in the `Engine` it imported from the package.

const utf8 = new TextEncoder();

/** Decodes the escapes of a `C:`/`S:` line and appends CRLF unless the line ends in `\`. */
function unescape(text) {
  const out = [];
  const bytes = utf8.encode(text);
  let crlf = true;
  for (let i = 0; i < bytes.length; ) {
    if (bytes[i] !== 0x5c) {
      out.push(bytes[i++]);
      continue;
    }
    const next = bytes[i + 1];
    if (next === undefined) {
      crlf = false;
      break;
    }
    const c = String.fromCharCode(next);
    if (c === 'r') out.push(13);
    else if (c === 'n') out.push(10);
    else if (c === 't') out.push(9);
    else if (c === '\\') out.push(0x5c);
    else if (c === 'x') {
      out.push(parseInt(String.fromCharCode(bytes[i + 2], bytes[i + 3]), 16));
      i += 2;
    } else throw new Error(`bad escape \\${c}`);
    i += 2;
  }
  if (crlf) out.push(13, 10);
  return Uint8Array.from(out);
}

function escape(data) {
  const bytes = typeof data === 'string' ? utf8.encode(data) : data;
  let s = '';
  for (const b of bytes) {
    if (b === 13) s += '\\r';
    else if (b === 10) s += '\\n';
    else if (b === 9) s += '\\t';
    else if (b === 0x5c) s += '\\\\';
    else if (b >= 0x20 && b <= 0x7e) s += String.fromCharCode(b);
    else s += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return s;
}

function capsLine(caps) {
  return caps
    .map(({ name, args, value }) => {
      if (name === 'SASL') return `SASL:${args.join(',')}`;
      if (name === 'IMPLEMENTATION') return `IMPLEMENTATION:${args[0].replaceAll(' ', '_')}`;
      if (value !== undefined) return `${name}:${String(value).toUpperCase()}`;
      return name;
    })
    .join(' ');
}

function replyLine(r) {
  switch (r.type) {
    case 'ok': return `text ${escape(r.text)}`;
    case 'authenticated': return 'authenticated';
    case 'stat': return `stat ${r.count} ${r.size}`;
    case 'list': return `list ${r.entries.map((e) => `${e.number}:${e.size}`).join(' ')}`.trimEnd();
    case 'list-one': return `list-one ${r.entry.number}:${r.entry.size}`;
    case 'uidl': return `uidl ${r.entries.map((e) => `${e.number}:${escape(e.uid)}`).join(' ')}`.trimEnd();
    case 'uidl-one': return `uidl-one ${r.entry.number}:${escape(r.entry.uid)}`;
    case 'capabilities': return `capa ${capsLine(r.capabilities)}`.trimEnd();
    case 'languages': return `lang ${r.languages.map((l) => `${l.tag}:${escape(l.description)}`).join(' ')}`;
    case 'retrieved': return `retrieved ${r.octets}`;
    case 'tls-ready': return 'tls-ready';
    case 'closed': return `closed ${escape(r.text)}`;
    default: throw new Error(`unknown reply ${r.type}`);
  }
}

function errorLine(e) {
  if (e.kind === 'server:refused') return `server ${e.code ?? '-'} ${escape(e.text)}`;
  return e.kind.replace(':', ' ');
}

function parse(text) {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => {
      if (l.startsWith('option ')) {
        const rest = l.slice(7);
        const sp = rest.indexOf(' ');
        return { option: [rest.slice(0, sp), rest.slice(sp + 1).trim()] };
      }
      if (l.startsWith('A: ')) return { action: l.slice(3).trim() };
      if (l.startsWith('C: ')) return { client: unescape(l.slice(3)) };
      if (l.startsWith('S: ')) return { server: unescape(l.slice(3)) };
      if (l.startsWith('E: ')) return { event: l.slice(3).trimEnd() };
      if (l === 'S:') return { server: Uint8Array.of(13, 10) };
      if (l === 'C:') return { client: Uint8Array.of(13, 10) };
      throw new Error(`unknown transcript line: ${l}`);
    });
}

function options(lines) {
  const o = {};
  for (const { option } of lines) {
    if (!option) continue;
    const [k, v] = option;
    const on = v === 'on';
    switch (k) {
      case 'security': o.security = v; break;
      case 'negotiate': o.negotiate = on; break;
      case 'allow-cleartext': o.allowCleartextPassword = on; break;
      case 'pipelining': o.pipelining = on; break;
      case 'lenient-uids': o.lenientUids = on; break;
      case 'status-line': o.statusLine = Number(v); break;
      case 'data-line': o.dataLine = Number(v); break;
      case 'listing': o.listing = Number(v); break;
      default: throw new Error(`unknown option ${k}`);
    }
  }
  return o;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const equalBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

class Run {
  constructor(Engine, lines, batched) {
    this.client = new Engine(options(lines));
    this.batched = batched;
    this.log = [];
    this.bodies = new Map();
    this.written = new Uint8Array(0);
    this.dead = false;
    /** The first error the session produced (refused action, failed command, fatal). */
    this.firstError = null;
  }

  noteError(e) {
    this.firstError ??= e;
  }

  nextEvents() {
    if (this.batched) return this.client.pollEvents();
    const ev = this.client.pollEvent();
    return ev === undefined ? [] : [ev];
  }

  drainEvents() {
    while (!this.dead) {
      let events;
      try {
        events = this.nextEvents();
      } catch (e) {
        this.die(e);
        break;
      }
      if (events.length === 0) break;
      for (const ev of events) this.record(ev);
    }
  }

  record(ev) {
    let line;
    switch (ev.type) {
      case 'greeting': line = `greeting ${escape(ev.text)}`; break;
      case 'ready': line = `ready ${capsLine(ev.capabilities)}`; break;
      case 'tls-ready': line = 'tls-ready'; break;
      case 'body':
        this.bodies.set(ev.id, concat(this.bodies.get(ev.id) ?? new Uint8Array(0), ev.data));
        return;
      case 'completed':
        if (ev.reply?.type === 'retrieved') {
          const body = this.bodies.get(ev.id) ?? new Uint8Array(0);
          this.bodies.delete(ev.id);
          this.log.push(`body ${ev.id} ${escape(body)}`.trimEnd());
        }
        if (ev.error) this.noteError(ev.error);
        line = ev.error ? `err ${ev.id} ${errorLine(ev.error)}` : `ok ${ev.id} ${replyLine(ev.reply)}`;
        break;
      default: throw new Error(`unknown event ${ev.type}`);
    }
    this.log.push(line.trimEnd());
  }

  die(e) {
    if (typeof e?.kind !== 'string') throw e;
    this.noteError(e);
    this.log.push(`fatal ${e.kind}`);
    this.dead = true;
  }

  pump() {
    for (;;) {
      const before = [this.written.length, this.log.length];
      this.flush();
      this.drainEvents();
      if ((this.written.length === before[0] && this.log.length === before[1]) || this.dead) break;
    }
  }

  flush() {
    let bytes;
    while ((bytes = this.client.pollTransmit()) !== undefined) this.written = concat(this.written, bytes);
  }

  act(action) {
    const w = action.split(/\s+/);
    const n = (i) => Number(w[i]);
    const c = this.client;
    const calls = {
      capa: () => c.capa(),
      stls: () => c.stls(),
      user: () => c.user(w[1]),
      pass: () => c.pass(w[1]),
      apop: () => c.apop(w[1], w[2]),
      auth: () => {
        const token = w[3].startsWith('token:') ? w[3].slice(6) : undefined;
        return c.authenticate({
          username: w[2],
          method: w[1],
          ...(token === undefined ? { password: w[3] } : { token }),
          nonce: w[4] ?? '0123456789abcdefghij',
        });
      },
      stat: () => c.stat(),
      list: () => c.list(w[1] === undefined ? undefined : n(1)),
      uidl: () => c.uidl(w[1] === undefined ? undefined : n(1)),
      retr: () => c.retr(n(1)),
      top: () => c.top(n(1), n(2)),
      dele: () => c.dele(n(1)),
      noop: () => c.noop(),
      rset: () => c.rset(),
      quit: () => c.quit(),
      utf8: () => c.utf8(),
      lang: () => c.lang(w[1]),
    };
    if (w[0] === 'tls-established') {
      try {
        c.tlsEstablished();
      } catch (e) {
        this.noteError(e);
        this.log.push(`refused ${e.kind}`);
      }
      return;
    }
    if (w[0] === 'eof') {
      try {
        c.handleEof();
      } catch (e) {
        this.die(e);
      }
      return;
    }
    const call = calls[w[0]];
    if (!call) throw new Error(`unknown action ${w[0]}`);
    try {
      call();
    } catch (e) {
      if (typeof e?.kind !== 'string') throw e;
      this.noteError(e);
      this.log.push(`refused ${e.kind}`);
    }
  }
}

/** Runs a transcript with the server stream cut at `cut` (null: one byte per read). */
function replay(Engine, lines, cut, batched) {
  const run = new Run(Engine, lines, batched);
  let expectedWritten = new Uint8Array(0);
  let fed = 0;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.action !== undefined) {
      if (!run.dead) {
        run.act(line.action);
        run.pump();
      }
      i++;
    } else if (line.client) {
      expectedWritten = concat(expectedWritten, line.client);
      i++;
    } else if (line.server) {
      run.flush();
      if (!equalBytes(run.written, expectedWritten)) return { log: run.log, written: run.written, expectedWritten };
      let block = new Uint8Array(0);
      while (lines[i]?.server) block = concat(block, lines[i++].server);
      let pieces;
      if (cut === null) pieces = Array.from(block, (b) => Uint8Array.of(b));
      else if (cut > fed && cut < fed + block.length) pieces = [block.subarray(0, cut - fed), block.subarray(cut - fed)];
      else pieces = [block];
      fed += block.length;
      for (const piece of pieces) {
        if (run.dead) break;
        try {
          run.client.handleInput(piece);
        } catch (e) {
          run.die(e);
          break;
        }
        run.pump();
      }
    } else {
      i++;
    }
  }
  run.pump();
  return { log: run.log, written: run.written, expectedWritten, firstError: run.firstError };
}

/**
 * Replays one vector (its text) through `Engine` (the class from `popwire` or `popwire/engine`)
 * at every split of the server's bytes (every `stride`-th split when given) and byte by byte,
 * reading events one at a time and in batches; throws on the first difference from its `E:`
 * lines.
 */
export function checkVector(Engine, name, text, { stride = 1 } = {}) {
  const lines = parse(text);
  const expected = lines.filter((l) => l.event !== undefined).map((l) => l.event);
  const serverLen = lines.reduce((n, l) => n + (l.server ? l.server.length : 0), 0);
  const cuts = [...Array(serverLen + 1).keys()].filter((c) => c % stride === 0 || c === serverLen);
  cuts.push(null);
  for (const batched of [false, true]) {
    for (const cut of cuts) {
      const { log, written, expectedWritten } = replay(Engine, lines, cut, batched);
      const how = `cut ${cut ?? 'byte-by-byte'}, ${batched ? 'pollEvents' : 'pollEvent'}`;
      if (log.join('\n') !== expected.join('\n')) {
        throw new Error(`${name} (${how}): events\n  got:      ${log.join('\n            ')}\n  expected: ${expected.join('\n            ')}`);
      }
      if (escape(written) !== escape(expectedWritten)) {
        throw new Error(`${name} (${how}): client bytes\n  got:      ${escape(written)}\n  expected: ${escape(expectedWritten)}`);
      }
    }
  }
}

/**
 * Replays a class vector (tests/vectors/classes/*.class, its text) once, each `S:` block fed
 * whole, checking the client's bytes as a transcript does. Returns the expected `class` line's
 * fields and the first error the session produced (the JS error object, or null).
 */
export function replayClassVector(Engine, name, text) {
  const all = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const wanted = all.filter((l) => l.startsWith('class '));
  if (wanted.length !== 1) throw new Error(`${name}: expected one class line, found ${wanted.length}`);
  const [, errorClass, code, temporariness] = wanted[0].trim().split(/\s+/);
  const lines = parse(all.filter((l) => !l.startsWith('class ')).join('\n'));
  // A cut past the end: every block is fed whole.
  const { written, expectedWritten, firstError } = replay(Engine, lines, -1, false);
  if (escape(written) !== escape(expectedWritten)) {
    throw new Error(`${name}: client bytes\n  got:      ${escape(written)}\n  expected: ${escape(expectedWritten)}`);
  }
  return { want: { errorClass, code, temporary: temporariness === 'temporary' }, error: firstError };
}
