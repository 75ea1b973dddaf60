// The error classes, the same split as popwire's other front ends: the core decides one class
// per error (`ErrorClass`, Rust `Error::class()`; tests/vectors/classes/README.md) and this file
// maps each class name to one JS error class, mechanically. The Client's transports build
// network, TLS, timeout and config errors with the same class names.

/** What a class means for `temporary` when nothing more specific is known (Rust
 * `ErrorClass::is_temporary`; a server error's code decides its own). */
const TEMPORARY_CLASSES = new Set(['network', 'timeout']);

/**
 * Base class of every error popwire throws. `errorClass` is the core's classification (`auth`,
 * `tls`, `protocol`, `server`, `network`, `timeout`, `config`, `storage`, `cancelled`), one JS
 * class each; `kind` is the finer stable `family:name`. For a server's `-ERR`, `code` (RFC
 * 2449/3206 response code or null), `text` and `command` say more. `temporary` is true when
 * trying again later may work without any change.
 */
export class PopwireError extends Error {
  constructor(message, { kind = 'error', errorClass, code = null, text = null, command = null, temporary, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.kind = kind;
    this.errorClass = errorClass ?? new.target.errorClass ?? 'config';
    this.code = code;
    this.text = text;
    this.command = command;
    this.temporary = temporary ?? TEMPORARY_CLASSES.has(this.errorClass);
  }
}

/** Class `server`: the server refused a command with `-ERR`; `code` and `text` say why, and
 * `temporary` whether to retry later (`[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]`). */
export class ServerError extends PopwireError {
  static errorClass = 'server';
}

/** Class `auth`: the server refused the credentials, or could not prove it knows the password
 * (SCRAM). Fix the credentials. */
export class AuthError extends PopwireError {
  static errorClass = 'auth';
}

/** Class `tls`: the certificate was rejected, the TLS handshake failed, or TLS was required but
 * the server did not offer it. Nothing secret was sent. */
export class TlsError extends PopwireError {
  static errorClass = 'tls';
}

/** Class `protocol`: the server broke the POP3 protocol or a SASL mechanism (or an attacker
 * tampered with the connection). */
export class ProtocolError extends PopwireError {
  static errorClass = 'protocol';
}

/** Class `config`: the settings or the calling code are wrong: a cleartext password without TLS
 * not allowed, no usable login mechanism, APOP not allowed, a command in the wrong state, a bad
 * argument, an unusable CA file. */
export class ConfigError extends PopwireError {
  static errorClass = 'config';
}

/** Class `timeout`: the server did not answer in time. Retry later. */
export class TimeoutError extends PopwireError {
  static errorClass = 'timeout';
}

/** Class `network`: the host did not resolve, refused the connection, or the connection broke
 * (a dropped connection is `temporary`). */
export class NetworkError extends PopwireError {
  static errorClass = 'network';
}

/** Class `storage`: where a message goes failed (the caller's sink or store). */
export class StorageError extends PopwireError {
  static errorClass = 'storage';
}

/** Class `cancelled`: the caller cancelled. Named `AbortError`, as the web platform names
 * cancellations. */
export class AbortError extends PopwireError {
  static errorClass = 'cancelled';
}

/** The JS class of each class name: the whole mapping. */
export const ERROR_CLASSES = Object.freeze({
  auth: AuthError,
  tls: TlsError,
  protocol: ProtocolError,
  server: ServerError,
  network: NetworkError,
  timeout: TimeoutError,
  config: ConfigError,
  storage: StorageError,
  cancelled: AbortError,
});

/**
 * Turns an error thrown by the WebAssembly engine (a JS `Error` with `kind`, `errorClass`,
 * `temporary`, and for `-ERR` `code`/`text`/`command`) into its class. Anything else (a
 * PopwireError already, a wasm trap) is returned as it is.
 */
export function fromEngine(e) {
  if (e instanceof PopwireError || e === null || typeof e !== 'object' || typeof e.kind !== 'string') {
    return e;
  }
  const Class = Object.hasOwn(ERROR_CLASSES, e.errorClass) ? ERROR_CLASSES[e.errorClass] : PopwireError;
  return new Class(e.message, {
    kind: e.kind,
    errorClass: e.errorClass,
    code: e.code ?? null,
    text: e.text ?? null,
    command: e.command ?? null,
    temporary: !!e.temporary,
  });
}
