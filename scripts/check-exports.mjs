// Checks the built package the way a user imports it: every subpath export resolves through
// package.json "exports" (self-reference) to a module that exports something.
const subpaths = ['cipherml', 'cipherml/core', 'cipherml/paillier', 'cipherml/ml', 'cipherml/fl', 'cipherml/secagg', 'cipherml/ckks', 'cipherml/inference', 'cipherml/service', 'cipherml/gateway', 'cipherml/attest'];
for (const s of subpaths) {
  const mod = await import(s);
  if (Object.keys(mod).length === 0) throw new Error(`${s} exports nothing`);
  console.log(`ok ${s}: ${Object.keys(mod).length} exports`);
}
