export { PopwireError } from './errors.js';

/** Users and messages in memory, shared by every {@link Server} session made over it. */
export class Maildrop {
  constructor();
  /** Adds (or replaces) a user. */
  addUser(name: string, password: string): void;
  /** Adds a message (LF or CRLF line ends; a string is UTF-8 encoded); returns its unique-id. */
  addMessage(message: Uint8Array | string): string;
  addMessageWithUid(uid: string, message: Uint8Array | string): void;
  /** The unique-ids, in order. */
  uids(): string[];
  readonly length: number;
  /** SCRAM nonces start with this text: use fresh random text on an untrusted network. */
  setNonceSeed(seed: string): void;
  free(): void;
  [Symbol.dispose](): void;
}

export interface ServerOptions {
  greeting?: string;
  /** `<unique@host>` for APOP; different for every connection. */
  apopTimestamp?: string;
  /** Offer STLS (the transport can run a TLS handshake). */
  offerStls?: boolean;
  /** The connection is TLS from the start. */
  tlsActive?: boolean;
  allowCleartextPassword?: boolean;
  pipelining?: boolean;
  /** SASL mechanisms to offer: PLAIN, SCRAM-SHA-1, SCRAM-SHA-256. */
  mechanisms?: string[];
  scramIterations?: number;
  implementation?: string;
  expire?: 'never' | number;
  loginDelay?: number;
  maxLine?: number;
  /** Octets read from the maildrop (and roughly written) per `pollTransmit`. Default 64 KiB. */
  chunkSize?: number;
  maxInput?: number;
}

export type ServerEvent =
  | { type: 'logged-in'; user: string; method: string }
  | { type: 'auth-failed'; user: string | null; method: string }
  /** `+OK` to STLS is queued: write it, run the TLS handshake, then call `tlsEstablished()`. */
  | { type: 'stls-requested'; discarded: number }
  | { type: 'committed'; deleted: number[] }
  | { type: 'closed'; reason: 'quit' | 'commit-failed' | 'line-too-long' | 'input-overflow' | 'read-failed'; detail?: string };

/**
 * One POP3 server session over a {@link Maildrop}, sans-IO: write what `pollTransmit` returns,
 * feed the client's bytes to `handleInput`, act on `pollEvent`. Once `isClosed` and
 * `pollTransmit` returns `undefined`, close the connection.
 */
export class Server {
  constructor(maildrop: Maildrop, options?: ServerOptions);
  handleInput(data: Uint8Array): void;
  pollTransmit(): Uint8Array | undefined;
  pollEvent(): ServerEvent | undefined;
  tlsEstablished(): void;
  readonly isClosed: boolean;
  readonly isTls: boolean;
  /** The logged-in user, in the transaction state. */
  readonly user: string | undefined;
  free(): void;
  [Symbol.dispose](): void;
}
