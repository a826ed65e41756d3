import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * `no-restricted-imports` for files matching `files`: none of the `banned` top-level folders (of
 * src/, or bench/) may be imported, by any relative path.
 */
function layer(files, banned, allowed = []) {
  const patterns = [...banned.flatMap((b) => [`../${b}/*`, `../../${b}/*`, `../../../${b}/*`, `**/${b === 'bench' ? 'bench' : `src/${b}`}/*`, `../${b}`, `../../${b}`]), ...allowed.map((f) => `!**/${f}`)];
  return [{ files, rules: { 'no-restricted-imports': ['error', { patterns: [{ group: patterns, message: `layering (docs/ARCHITECTURE.md): this folder may not import ${banned.join(', ')}` }] }] } }];
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'native/gmp/build/**', 'coverage/**', 'src/fl/gen/**', 'src/inference/gen/**', 'src/console/static/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', performance: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'Use an `as const` object instead of enum (erasableSyntaxOnly).' }],
    },
  },
  // Layering (docs/ARCHITECTURE.md): core ← paillier/ckks/secagg/attest ← ml ← fl/inference/service/gateway ← demos ← cli.
  // A lower layer never imports a higher one; layers of one level never import each other; the
  // trusted gateway never imports the untrusted service (what both need lives in ml/ or core/);
  // nothing in src/ but the CLI (lazily) loads bench/. One entry per folder: a later entry for the
  // same file would replace, not extend, an earlier rule.
  ...layer(['src/core/**'], ['paillier', 'ckks', 'secagg', 'attest', 'ml', 'fl', 'inference', 'service', 'gateway', 'console', 'demos', 'cli', 'bench', 'enclave']),
  ...layer(['src/paillier/**'], ['ckks', 'secagg', 'attest', 'ml', 'fl', 'inference', 'service', 'gateway', 'console', 'demos', 'cli', 'bench', 'enclave']),
  ...layer(['src/ckks/**'], ['paillier', 'secagg', 'attest', 'ml', 'fl', 'inference', 'service', 'gateway', 'console', 'demos', 'cli', 'bench', 'enclave']),
  ...layer(['src/secagg/**'], ['paillier', 'ckks', 'attest', 'ml', 'fl', 'inference', 'service', 'gateway', 'console', 'demos', 'cli', 'bench', 'enclave']),
  ...layer(['src/attest/**'], ['paillier', 'ckks', 'secagg', 'ml', 'fl', 'inference', 'service', 'gateway', 'console', 'demos', 'cli', 'bench', 'enclave']),
  ...layer(['src/ml/**'], ['fl', 'inference', 'service', 'gateway', 'console', 'demos', 'cli', 'bench', 'enclave']),
  ...layer(['src/fl/**'], ['enclave', 'inference', 'service', 'gateway', 'console', 'demos', 'cli', 'bench']),
  ...layer(['src/enclave/**'], ['ckks', 'secagg', 'inference', 'service', 'gateway', 'console', 'demos', 'cli', 'bench']),
  ...layer(['src/inference/**'], ['paillier', 'secagg', 'fl', 'service', 'gateway', 'console', 'demos', 'cli', 'bench', 'enclave']),
  // Encrypted ONNX inference (src/inference) sits below the service and the gateway: the service
  // runs its plans, the gateway its keygen, encryption and decryption.
  ...layer(['src/service/**'], ['fl', 'gateway', 'demos', 'cli', 'bench', 'enclave']),
  ...layer(['src/gateway/**'], ['fl', 'service', 'console', 'demos', 'cli', 'bench', 'enclave']),
  // The web console's server side (accounts, sessions, tokens): registered by the service, so it
  // never imports the service (it receives the token store and database as interfaces).
  ...layer(['src/console/**'], ['fl', 'inference', 'service', 'gateway', 'demos', 'cli', 'bench', 'enclave']),
  // The browser app: the trusted side; it talks to the service over HTTP only. It runs the shared
  // protocol layers (core, ckks, ml: envelopes, key and ciphertext formats, packing) through the
  // browser shims of web/src/platform/, never the service, the gateway or the console server.
  // Of src/inference it runs only what the CLI gateway runs on the trusted side without files or
  // threads: the inference codec (encrypt inputs, decrypt outputs), the .npy reader and the owner's
  // deploy bundle.
  ...layer(['web/**'], ['paillier', 'secagg', 'attest', 'fl', 'inference', 'service', 'console', 'gateway', 'demos', 'cli', 'bench', 'enclave'], ['src/inference/codec.ts', 'src/inference/npy.ts', 'src/inference/deploy-bundle.ts']),
  ...layer(['src/demos/**'], ['cli', 'bench']),
);
