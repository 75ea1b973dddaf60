/** The core's classification of every error (Rust `popwire::proto::ErrorClass`, stable names;
 * tests/vectors/classes/README.md): what to do next. One JS error class each. */
export type ErrorClassName =
  | 'auth'
  | 'tls'
  | 'protocol'
  | 'server'
  | 'network'
  | 'timeout'
  | 'config'
  | 'storage'
  | 'cancelled';

export interface PopwireErrorOptions {
  kind?: string;
  /** Default: the class's own (`AuthError`: `'auth'`, ...). */
  errorClass?: ErrorClassName;
  code?: string | null;
  text?: string | null;
  command?: string | null;
  /** Default: true for `network` and `timeout`, false otherwise. */
  temporary?: boolean;
  cause?: unknown;
}

/**
 * Base class of every error popwire throws (Python: `popwire.Error`). `errorClass` is the
 * core's classification, and decides the subclass; `kind` is a finer stable `family:name`: the
 * engine's (`server:refused`, `protocol:*`, `policy:*`, `sasl:*`, `usage:*`) and the Client's
 * (`net:resolve`, `net:connect`, `net:io`, `net:timeout`, `tls:certificate`, `tls:failed`,
 * `config:ca-file`).
 */
export class PopwireError extends Error {
  constructor(message: string, options?: PopwireErrorOptions);
  readonly kind: string;
  /** The core's class: `auth`, `tls`, `protocol`, `server`, `network`, `timeout`, `config`,
   * `storage` or `cancelled`. */
  readonly errorClass: ErrorClassName;
  /** For `-ERR`: the RFC 2449/3206 response code (`IN-USE`, `LOGIN-DELAY`, `SYS/TEMP`,
   * `SYS/PERM`, `AUTH`, ...), or `null`. */
  readonly code: string | null;
  /** For `-ERR`: the server's text after the code. */
  readonly text: string | null;
  /** The refused POP3 command, e.g. `RETR`, when there is one. */
  readonly command: string | null;
  /** True when trying again later may work without any change (`[IN-USE]`, `[LOGIN-DELAY]`,
   * `[SYS/TEMP]`, timeouts, a dropped connection). */
  readonly temporary: boolean;
}

/** Class `server`: the server refused a command with `-ERR`; `code` and `text` say why, and
 * `temporary` whether to retry later. */
export class ServerError extends PopwireError {
  static readonly errorClass: 'server';
  readonly errorClass: 'server';
}

/** Class `auth`: the server refused the credentials (`[AUTH]`, or `-ERR` to PASS/APOP/AUTH
 * without a temporary code), or a SASL server could not prove it knows the password. */
export class AuthError extends PopwireError {
  static readonly errorClass: 'auth';
  readonly errorClass: 'auth';
}

/** Class `tls`: the certificate was rejected, the TLS handshake failed, or TLS was required but
 * the server did not offer it. Nothing secret was sent. */
export class TlsError extends PopwireError {
  static readonly errorClass: 'tls';
  readonly errorClass: 'tls';
}

/** Class `protocol`: the server broke the protocol or a SASL mechanism (or injected data
 * around STLS). */
export class ProtocolError extends PopwireError {
  static readonly errorClass: 'protocol';
  readonly errorClass: 'protocol';
}

/** Class `config`: the settings or the calling code are wrong: an unusable CA file, a cleartext
 * password without TLS not allowed (`allowCleartextPassword`), no usable login mechanism, APOP
 * not allowed, a command in the wrong state or after the session closed, a bad argument. */
export class ConfigError extends PopwireError {
  static readonly errorClass: 'config';
  readonly errorClass: 'config';
}

/** Class `timeout`: the server did not answer within the timeout. */
export class TimeoutError extends PopwireError {
  static readonly errorClass: 'timeout';
  readonly errorClass: 'timeout';
}

/** Class `network`: the host did not resolve, refused the connection (permanent), or the
 * connection broke (temporary). */
export class NetworkError extends PopwireError {
  static readonly errorClass: 'network';
  readonly errorClass: 'network';
}

/** Class `storage`: where a message goes (the caller's sink or store) failed. */
export class StorageError extends PopwireError {
  static readonly errorClass: 'storage';
  readonly errorClass: 'storage';
}

/** Class `cancelled`: the caller cancelled (`name` is `'AbortError'`). */
export class AbortError extends PopwireError {
  static readonly errorClass: 'cancelled';
  readonly errorClass: 'cancelled';
}

/** The JS class of each class name. */
export const ERROR_CLASSES: Readonly<{
  auth: typeof AuthError;
  tls: typeof TlsError;
  protocol: typeof ProtocolError;
  server: typeof ServerError;
  network: typeof NetworkError;
  timeout: typeof TimeoutError;
  config: typeof ConfigError;
  storage: typeof StorageError;
  cancelled: typeof AbortError;
}>;
