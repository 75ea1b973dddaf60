// Deno's test runner has no assertion module without a download (jsr:@std/assert); this one
// is enough for the runtime suites.
export function assertEquals(actual, expected) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`not equal\n  got:      ${a}\n  expected: ${e}`);
}
