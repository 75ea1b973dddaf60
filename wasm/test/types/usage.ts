// Compiled (never run) by test/types.test.mjs: the TypeScript declarations describe the API the
// tests use, through the package's exports map.
import { Client, Engine, AuthError, ConfigError, NetworkError, PopwireError, ServerError, TlsError, ProtocolError, TimeoutError, StorageError, AbortError, ERROR_CLASSES } from 'popwire';
import type { ErrorClassName } from 'popwire';
import type { Capability, EngineEvent, ListEntry, Reply, UidlEntry } from 'popwire';
import { Engine as NeutralEngine } from 'popwire/engine';
import { Maildrop, Server, type ServerEvent } from 'popwire/server';

export async function fetchAll(host: string, user: string, password: string): Promise<Uint8Array[]> {
  const client: Client = await Client.connect({ host, security: 'starttls', caFile: '/ca.pem', timeout: 10_000 });
  await client.login(user, password);
  const caps: Capability[] = await client.capa();
  const { count, size }: { count: number; size: number } = await client.stat();
  const list: ListEntry[] = await client.list();
  const one: ListEntry = await client.list(1);
  const uidl: UidlEntry[] = await client.uidl();
  const uid: string = (await client.uidl(1)).uid;
  const top: Uint8Array = await client.top(1, 0);
  for await (const chunk of client.retrStream(1)) {
    const bytes: Uint8Array = chunk;
    void bytes;
  }
  const bodies = await Promise.all(list.map((e) => client.retr(e.number)));
  await client.dele(1);
  await client.rset();
  await client.noop();
  const bye: string = await client.quit();
  void [caps, count, size, one, uidl, uid, top, bye];
  return bodies;
}

export function errors(e: unknown): string {
  if (e instanceof AuthError) return `auth ${e.code ?? '-'} ${e.text}`;
  if (e instanceof ServerError) return `${e.command}: ${e.code} ${e.temporary}`;
  if (e instanceof TlsError || e instanceof ProtocolError || e instanceof TimeoutError) return e.kind;
  if (e instanceof ConfigError || e instanceof NetworkError) return `${e.kind} ${e.temporary}`;
  if (e instanceof StorageError || e instanceof AbortError) return e.name;
  if (e instanceof PopwireError) return e.kind;
  return String(e);
}

export function byClass(e: unknown): ErrorClassName | undefined {
  if (!(e instanceof PopwireError)) return undefined;
  const Class: typeof PopwireError = ERROR_CLASSES[e.errorClass];
  const server: 'server' = ServerError.errorClass;
  void [Class, server];
  switch (e.errorClass) {
    case 'server':
    case 'network':
    case 'timeout':
      return e.temporary ? e.errorClass : undefined;
    default:
      return e.errorClass;
  }
}

export function sansIo(input: Uint8Array): Uint8Array | undefined {
  const engine = new Engine({ security: 'none', negotiate: false, maxInFlight: 8 });
  engine.handleInput(input);
  const events: EngineEvent[] = engine.pollEvents();
  for (const ev of events) {
    if (ev.type === 'completed') {
      if (ev.error) return undefined;
      const reply: Reply = ev.reply;
      if (reply.type === 'retrieved') return new Uint8Array(reply.octets);
    } else if (ev.type === 'body') {
      return ev.data;
    } else if (ev.type === 'tls-ready') {
      engine.tlsEstablished();
    }
  }
  const id: number = engine.authenticate({ username: 'u', password: 'p', method: 'SCRAM-SHA-256' });
  void id;
  void new NeutralEngine();
  const maildrop = new Maildrop();
  maildrop.addUser('u', 'p');
  const uidOf: string = maildrop.addMessage('Subject: x\n\nbody\n');
  const server = new Server(maildrop, { offerStls: true, mechanisms: ['PLAIN'] });
  server.handleInput(input);
  const ev: ServerEvent | undefined = server.pollEvent();
  void [uidOf, ev, engine.phase];
  return server.pollTransmit();
}
