// Replays every error-class vector (tests/vectors/classes/*.class; README.md there) through
// `Engine`: the first error of each situation carries the core's class (`errorClass`), code
// and temporariness, and is an instance of the one JS error class mapped to that class.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Engine, ERROR_CLASSES, PopwireError } from 'popwire';
import { replayClassVector } from './support/transcripts.mjs';

const DIR = fileURLToPath(new URL('../../tests/vectors/classes/', import.meta.url));
const files = readdirSync(DIR).filter((f) => f.endsWith('.class')).sort();

const NAMES = ['auth', 'tls', 'protocol', 'server', 'network', 'timeout', 'config', 'storage', 'cancelled'];

test('the class vectors are there', () => {
  assert.ok(files.length >= 15, `expected the class vectors, found ${files.length}`);
});

test('every class name has exactly one JS error class', () => {
  assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), [...NAMES].sort());
  assert.equal(new Set(Object.values(ERROR_CLASSES)).size, NAMES.length);
  for (const [name, Class] of Object.entries(ERROR_CLASSES)) {
    assert.equal(Class.errorClass, name);
    assert.ok(new Class('x') instanceof PopwireError);
    assert.equal(new Class('x').errorClass, name);
  }
  assert.equal(ERROR_CLASSES.cancelled.name, 'AbortError');
});

for (const file of files) {
  test(`class vector ${file}`, () => {
    const { want, error } = replayClassVector(Engine, file, readFileSync(DIR + file, 'utf8'));
    assert.ok(error, `${file}: the session produced no error`);
    const got = {
      errorClass: error.errorClass,
      // The vectors' CODE column: the response code the class carries (`server` only).
      code: error.errorClass === 'server' ? (error.code ?? '-') : '-',
      temporary: error.temporary,
    };
    assert.deepEqual(got, want, `${file}: ${error.kind}: ${error.message}`);
    const Class = ERROR_CLASSES[want.errorClass];
    assert.ok(error instanceof Class, `${file}: a ${error.constructor.name}, want a ${Class.name}`);
    assert.equal(error.name, Class.name);
    assert.equal(error.constructor, Class);
  });
}
