// The size budget of the client module that `popwire` loads: at most 150 KB after wasm-opt and
// 60 KB gzipped (decimal kilobytes). Skipped for a `build.sh --debug` build.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

test('the client .wasm fits the size budget', (t) => {
  const wasm = readFileSync(new URL('../pkg/popwire_wasm_bg.wasm', import.meta.url));
  if (wasm.length > 400_000) {
    t.skip(`not a release build (${wasm.length} bytes): run build.sh`);
    return;
  }
  const gz = gzipSync(wasm, { level: 9 }).length;
  t.diagnostic(`pkg/popwire_wasm_bg.wasm: ${wasm.length} bytes, ${gz} gzipped`);
  assert.ok(wasm.length <= 150_000, `${wasm.length} bytes > 150 KB`);
  assert.ok(gz <= 60_000, `${gz} bytes gzipped > 60 KB`);
});
