export { PopwireError, ServerError, AuthError, TlsError, ProtocolError, ConfigError, TimeoutError, NetworkError, StorageError, AbortError, ERROR_CLASSES } from './errors.js';
export type { ErrorClassName, PopwireErrorOptions } from './errors.js';
import type { PopwireError } from './errors.js';

/** `'tls'`: TLS from the first byte (port 995). `'starttls'`: STLS before any credential.
 * `'none'`: no encryption, chosen explicitly. */
export type Security = 'tls' | 'starttls' | 'none';

/** Options of an {@link Engine}; every field is optional. */
export interface EngineOptions {
  /** Default `'tls'`. */
  security?: Security;
  /** Send CAPA (and STLS for `starttls`) after the greeting and report `ready`. Default true. */
  negotiate?: boolean;
  /** Allow USER/PASS, PLAIN and LOGIN without TLS. Default false. */
  allowCleartextPassword?: boolean;
  /** Pipeline commands when the server advertises PIPELINING. Default true. */
  pipelining?: boolean;
  /** Most commands in flight when pipelining. Default 128. */
  maxInFlight?: number;
  /** Accept unique-ids beyond RFC 1939's 1-70 printable octets. Default false. */
  lenientUids?: boolean;
  /** Longest status line, CRLF included. Default 512. */
  statusLine?: number;
  /** Longest line in a RETR/TOP body. Default 4 MiB. */
  dataLine?: number;
  /** Largest LIST/UIDL/CAPA listing in octets. Default 64 MiB. */
  listing?: number;
  /** Most unprocessed input held. Default 4 MiB. */
  inputBuffer?: number;
}

/** One capability from CAPA: `name` upper-case, `args` the words after it, `value` the parsed
 * `LOGIN-DELAY` seconds or `EXPIRE` policy. */
export interface Capability {
  name: string;
  args: string[];
  value?: number | 'never';
}

export interface ListEntry {
  number: number;
  size: number;
}

export interface UidlEntry {
  number: number;
  uid: string;
}

/** A successful reply. Sizes are JS numbers (exact up to 2^53 octets). */
export type Reply =
  | { type: 'ok'; text: string }
  | { type: 'authenticated' }
  | { type: 'stat'; count: number; size: number }
  | { type: 'list'; entries: ListEntry[] }
  | { type: 'list-one'; entry: ListEntry }
  | { type: 'uidl'; entries: UidlEntry[] }
  | { type: 'uidl-one'; entry: UidlEntry }
  | { type: 'capabilities'; capabilities: Capability[] }
  | { type: 'languages'; languages: { tag: string; description: string }[] }
  | { type: 'retrieved'; octets: number }
  | { type: 'tls-ready' }
  | { type: 'closed'; text: string };

/** Something to act on. `id` is the number a command method returned. */
export type EngineEvent =
  | { type: 'greeting'; text: string; apopTimestamp: string | null }
  | { type: 'ready'; capabilities: Capability[] }
  /** STLS accepted during negotiation: run the TLS handshake now, then call `tlsEstablished()`. */
  | { type: 'tls-ready' }
  /** A piece of a RETR/TOP body, dot-unstuffed, CRLF line ends as sent. */
  | { type: 'body'; id: number; data: Uint8Array }
  | { type: 'completed'; id: number; reply: Reply; error?: undefined }
  /** The server's `-ERR` (a ServerError), or a local refusal that sent nothing. */
  | { type: 'completed'; id: number; error: PopwireError; reply?: undefined };

export type Phase = 'greeting' | 'authorization' | 'awaiting-tls' | 'transaction' | 'closed' | 'failed';

/** How to log in: `'auto'` (the strongest mechanism offered, never APOP), `'user'`
 * (USER/PASS), `'apop'`, or a SASL name (`'PLAIN'`, `'SCRAM-SHA-256'`, `'XOAUTH2'`, ...). */
export type LoginMethod = 'auto' | 'user' | 'apop' | (string & {});

export interface AuthenticateOptions {
  username: string;
  /** A password; or give `token`. */
  password?: string;
  /** An OAuth 2.0 access token, for XOAUTH2 or OAUTHBEARER. */
  token?: string;
  /** Default `'auto'`. */
  method?: LoginMethod;
  authzid?: string;
  /** Server host and port, sent by OAUTHBEARER. */
  host?: string;
  port?: number;
  /** SCRAM client nonce; default 24 random bytes (crypto.getRandomValues) in base64. */
  nonce?: string;
}

/**
 * A POP3 client session as a sans-IO state machine (no sockets, no timers): feed the server's
 * bytes to `handleInput`, write what `pollTransmit` returns, act on `pollEvent`/`pollEvents`.
 * Commands return an id; each completes with a `completed` event carrying that id, in order.
 * Methods throw a {@link PopwireError} when the engine refuses at once (nothing is sent);
 * `handleInput`, `handleEof` and `pollEvent(s)` throw when the session fails (close it).
 *
 * STLS: on a `tls-ready` event (or reply), stop reading, run the TLS handshake on the same
 * connection, then call `tlsEstablished()`. Any byte that arrives between is an attack, and
 * `handleInput` throws a ProtocolError (`protocol:injection-after-stls`).
 */
export class Engine {
  constructor(options?: EngineOptions);
  handleInput(data: Uint8Array): void;
  handleEof(): void;
  tlsEstablished(): void;
  /** Bytes to write now, or `undefined`. */
  pollTransmit(): Uint8Array | undefined;
  /** The next event, or `undefined` when more input is needed. */
  pollEvent(): EngineEvent | undefined;
  /** Every event until more input is needed, with consecutive body chunks of a command merged. */
  pollEvents(): EngineEvent[];
  readonly phase: Phase;
  readonly isTls: boolean;
  readonly capabilities: Capability[];
  readonly greeting: string | undefined;
  /** Commands issued and not yet completed. */
  readonly pending: number;
  authenticate(options: AuthenticateOptions): number;
  user(name: string): number;
  pass(password: string): number;
  apop(name: string, password: string): number;
  capa(): number;
  stls(): number;
  stat(): number;
  list(number?: number): number;
  uidl(number?: number): number;
  retr(number: number): number;
  top(number: number, lines: number): number;
  dele(number: number): number;
  noop(): number;
  rset(): number;
  quit(): number;
  utf8(): number;
  lang(tag?: string): number;
  /** Releases the WebAssembly memory now (otherwise on garbage collection). */
  free(): void;
  [Symbol.dispose](): void;
}
