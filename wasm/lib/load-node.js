// Instantiates a wasm-bindgen module from the package directory, synchronously (Node, Bun).
import { readFileSync } from 'node:fs';

export function load(glue, url) {
  glue.initSync({ module: readFileSync(url) });
}
