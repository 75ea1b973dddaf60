// Replays every transcript in tests/vectors/ through `Engine`, with the server's bytes split at
// every offset and fed one byte at a time: a port of core/tests/transcripts.rs (the format is
// in tests/vectors/README.md). Each vector runs twice: reading events one at a time
// (`pollEvent`) and in batches (`pollEvents`, which merges body chunks). The replay itself is
// in support/transcripts.mjs, shared with the Deno, Bun and workerd suites (runtimes/).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Engine } from 'popwire/engine';
import { checkVector } from './support/transcripts.mjs';

const VECTORS = fileURLToPath(new URL('../../tests/vectors/', import.meta.url));
const files = readdirSync(VECTORS).filter((f) => f.endsWith('.pop3')).sort();

test('the full vector set is there', () => {
  assert.ok(files.length >= 20, `expected the full vector set, found ${files.length}`);
});

for (const file of files) {
  test(`vector ${file} at every split, and byte by byte`, () => {
    checkVector(Engine, file, readFileSync(VECTORS + file, 'utf8'));
  });
}
