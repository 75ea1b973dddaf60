// Instantiates a wasm-bindgen module from the package directory, synchronously (Node, Bun).
import { readFileSync } from 'node:fs';

/** `file`: a name in pkg/, or a URL. */
export function load(glue, file) {
  const url = typeof file === 'string' ? new URL(`../pkg/${file}`, import.meta.url) : file;
  glue.initSync({ module: readFileSync(url) });
}
