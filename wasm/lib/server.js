// The server role for any JS runtime, for tests and demos: `Server` (one session, sans-IO)
// over a `Maildrop` (users and messages in memory). A WebAssembly module of its own, so the
// client module stays small.

import * as wasm from '../pkg/popwire_server.js';
import { load } from '#load';
import { fromEngine } from './errors.js';

await load(wasm, 'popwire_server_bg.wasm');

const encoder = new TextEncoder();
function bytes(data) {
  return typeof data === 'string' ? encoder.encode(data) : data;
}

/** Users and messages in memory, shared by every `Server` session made over it. */
export class Maildrop extends wasm.Maildrop {
  /** Adds a message (bytes or a string, LF or CRLF line ends); returns its unique-id. */
  addMessage(message) {
    return super.addMessage(bytes(message));
  }

  addMessageWithUid(uid, message) {
    super.addMessageWithUid(uid, bytes(message));
  }
}

/** One POP3 server session over a `Maildrop`, as a state machine. */
export class Server extends wasm.Server {
  constructor(maildrop, options) {
    try {
      super(maildrop, options);
    } catch (e) {
      throw fromEngine(e);
    }
  }

  tlsEstablished() {
    try {
      super.tlsEstablished();
    } catch (e) {
      throw fromEngine(e);
    }
  }
}
