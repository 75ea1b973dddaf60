// Instantiates a wasm-bindgen module with fetch (browsers, Deno, workers). Bundlers that
// understand `new URL('...wasm', import.meta.url)` copy the .wasm as an asset.

/** `file`: a name in pkg/, or a URL. */
export async function load(glue, file) {
  const url = typeof file === 'string' ? new URL(`../pkg/${file}`, import.meta.url) : file;
  await glue.default({ module_or_path: url });
}
