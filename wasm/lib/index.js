// popwire for Node: the sans-IO engine (`Engine`, `Server`, `Maildrop`), the socket client
// (`Client`), and the error classes.

export { Engine, Server, Maildrop } from './engine.js';
export { Client } from './client.js';
export { PopwireError, ServerError, AuthError, TlsError, ProtocolError, TimeoutError } from './errors.js';
