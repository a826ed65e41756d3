import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'native/gmp/build/**', 'coverage/**', 'src/fl/gen/**'] },
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
  {
    // Layering (docs/ARCHITECTURE.md): a lower layer never imports a higher one.
    files: ['src/core/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['../attest/*', '../paillier/*', '../ckks/*', '../secagg/*', '../ml/*', '../fl/*', '../inference/*', '../service/*', '../gateway/*', '../cli/*'] }] },
  },
  {
    files: ['src/paillier/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['../ckks/*', '../secagg/*', '../ml/*', '../fl/*', '../inference/*', '../service/*', '../gateway/*', '../cli/*'] }] },
  },
  {
    files: ['src/ckks/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['../paillier/*', '../secagg/*', '../ml/*', '../fl/*', '../inference/*', '../service/*', '../gateway/*', '../demos/*', '../cli/*'] }] },
  },
  {
    // attest: parsing and verification of attestation documents; may import only core.
    files: ['src/attest/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/paillier/*', '**/ckks/*', '**/secagg/*', '**/ml/*', '**/fl/*', '**/inference/*', '**/service/*', '**/gateway/*', '**/demos/*', '**/cli/*', '**/bench/*'] }] },
  },
  {
    files: ['src/inference/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['../paillier/*', '../secagg/*', '../fl/*', '../service/*', '../gateway/*', '../demos/*', '../cli/*'] }] },
  },
  {
    // service and gateway: above core/ckks/ml; neither imports the other's internals except the shared wire format (service/protocol).
    files: ['src/service/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/fl/*', '**/inference/*', '**/gateway/*', '**/demos/*', '**/cli/*', '**/bench/*'] }] },
  },
  {
    files: ['src/gateway/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/fl/*', '**/inference/*', '**/demos/*', '**/cli/*', '**/bench/*', '**/service/storage/*', '**/service/server*', '**/service/jobs*'] }] },
  },
);
