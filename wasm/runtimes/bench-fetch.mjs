// One runtime's side of bench/runtimes.mjs: `fetchAll` (connect over TLS, login, LIST, every
// RETR pipelined, QUIT) for the Worker and as a script for Node, Deno and Bun:
//
//   RUNTIME bench-fetch.mjs JSON   # JSON: { host, port, ca, user, password, runs }
//
// prints `{ importMs, runs: [{ ms, messages, bytes }] }`: the first run is a warm-up, not listed.

/** One fetch of the whole mailbox with `Client` (from `popwire`, imported by the caller). */
export async function fetchAll(Client, { host, port, ca, user, password }) {
  const start = performance.now();
  const client = await Client.connect({ host, port, security: 'tls', ...(ca === undefined ? {} : { ca }) });
  await client.login(user, password);
  const list = await client.list();
  const bodies = await Promise.all(list.map((e) => client.retr(e.number)));
  await client.quit();
  return { ms: performance.now() - start, messages: bodies.length, bytes: bodies.reduce((n, b) => n + b.length, 0) };
}

const arg = globalThis.Deno?.args?.[0] ?? globalThis.process?.argv?.[2];
if (arg !== undefined) {
  const p = JSON.parse(arg);
  const t0 = performance.now();
  const { Client } = await import('popwire');
  const importMs = performance.now() - t0;
  await fetchAll(Client, p);
  const runs = [];
  for (let i = 0; i < p.runs; i++) runs.push(await fetchAll(Client, p));
  console.log(JSON.stringify({ importMs, runs }));
}
