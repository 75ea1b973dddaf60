// Downloads every message over TLS into a directory, then deletes them from the server.
//
//   POP_HOST=pop.example.com POP_USER=me POP_PASSWORD=secret node examples/fetch-tls.mjs mail/
//
// Optional: POP_PORT (default 995), POP_CA_FILE (a PEM CA to trust instead of Node's roots),
// POP_KEEP=1 (leave the messages on the server).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, AuthError } from 'popwire';

const dir = process.argv[2] ?? 'mail';
await mkdir(dir, { recursive: true });

const client = await Client.connect({
  host: process.env.POP_HOST,
  port: Number(process.env.POP_PORT ?? 995),
  security: 'tls',
  caFile: process.env.POP_CA_FILE,
});
try {
  await client.login(process.env.POP_USER, process.env.POP_PASSWORD);
} catch (e) {
  if (e instanceof AuthError) console.error(`login refused (${e.code ?? 'no code'}): ${e.text}`);
  throw e;
}
const { count, size } = await client.stat();
console.log(`${count} messages, ${size} octets`);
for (const { number, uid } of await client.uidl()) {
  const message = await client.retr(number); // a Uint8Array, CRLF line ends
  await writeFile(join(dir, `${uid}.eml`), message);
  if (!process.env.POP_KEEP) await client.dele(number);
}
await client.quit(); // deletions happen here
