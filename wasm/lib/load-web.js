// Instantiates a wasm-bindgen module with fetch (browsers, Deno, workers). Bundlers that
// understand `new URL('...wasm', import.meta.url)` copy the .wasm as an asset.
export async function load(glue, url) {
  await glue.default({ module_or_path: url });
}
