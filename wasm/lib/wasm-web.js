// Loads the WebAssembly module next to this file with fetch (browsers, Deno, workers; bundlers
// that understand `new URL(..., import.meta.url)` copy the .wasm as an asset).
import init from '../pkg/popwire_wasm.js';

await init({ module_or_path: new URL('../pkg/popwire_wasm_bg.wasm', import.meta.url) });

export * from '../pkg/popwire_wasm.js';
