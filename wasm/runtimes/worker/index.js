// The Worker that runs checks.mjs inside workerd: POST /CHECK with a JSON array of arguments
// runs `checks[CHECK](...args)` and answers `{ ok, result }` or `{ ok: false, error }`; POST
// /bench runs one timed fetch for bench/runtimes.mjs.
// `popwire` resolves through the package's `workerd` export condition, as in a user's Worker.

import { Client } from 'popwire';

import * as checks from '../checks.mjs';
import { fetchAll } from '../bench-fetch.mjs';

/** For bench/runtimes.mjs: one timed fetch of a mailbox (`p` as bench-fetch.mjs takes it). */
const bench = (p) => fetchAll(Client, p);

export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.slice(1);
    const check = name === 'bench' ? bench : checks[name];
    if (request.method !== 'POST' || typeof check !== 'function') return new Response('no such check', { status: 404 });
    try {
      const result = await check(...(await request.json()));
      return Response.json({ ok: true, result });
    } catch (e) {
      return Response.json({ ok: false, error: { name: e?.name, kind: e?.kind, message: String(e?.message ?? e), stack: e?.stack } });
    }
  },
};
