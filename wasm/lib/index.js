// popwire for Node: the sans-IO client engine (`Engine`), the socket client (`Client`), and
// the error classes. The server role is in `popwire/server`.

export { Engine } from './engine.js';
export { Client } from './client.js';
export { PopwireError, ServerError, AuthError, TlsError, ProtocolError, ConfigError, TimeoutError, NetworkError, StorageError, AbortError, ERROR_CLASSES } from './errors.js';
