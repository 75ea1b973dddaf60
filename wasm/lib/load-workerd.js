// Instantiates the client module in Cloudflare Workers (the `workerd` export condition). Workers
// cannot fetch or compile WebAssembly at run time, and `import.meta.url` is undefined there:
// the .wasm is imported as a module, which wrangler (and workerd's config) hand over compiled.
import clientModule from '../pkg/popwire_wasm_bg.wasm';

export function load(glue, file) {
  if (file !== 'popwire_wasm_bg.wasm') {
    // Only the client module is bundled: the server role would add 115 KB to every Worker.
    throw new Error(`popwire: ${file} is not available under workerd (popwire/server is for Node, Deno and Bun)`);
  }
  glue.initSync({ module: clientModule });
}
