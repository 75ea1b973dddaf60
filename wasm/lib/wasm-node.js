// Loads the WebAssembly module synchronously from the package directory (Node, Bun).
import { readFileSync } from 'node:fs';
import { initSync } from '../pkg/popwire_wasm.js';

initSync({ module: readFileSync(new URL('../pkg/popwire_wasm_bg.wasm', import.meta.url)) });

export * from '../pkg/popwire_wasm.js';
