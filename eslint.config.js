import js from '@eslint/js';
import reactHooks from 'eslint-plugin-react-hooks';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'web/dist/**', 'node_modules/**', 'bench/results/**', '.data/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['src/gateway/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/worker/**', '**/providers/**'] }] },
  },
  {
    files: ['src/worker/**', 'src/providers/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/gateway/**'] }] },
  },
  {
    files: ['src/contracts/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['../*', '!./*'] }] },
  },
  {
    // Hooks called conditionally or with stale dependencies are bugs no type check catches.
    files: ['web/src/**/*.tsx', 'web/src/**/*.ts'],
    plugins: { 'react-hooks': reactHooks },
    rules: { 'react-hooks/rules-of-hooks': 'error', 'react-hooks/exhaustive-deps': 'error' },
  },
  {
    // The browser bundle takes the wire's contracts and nothing of the server's code.
    files: ['web/src/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/src/config/*', '**/src/store/*', '**/src/gateway/*', '**/src/worker/*', '**/src/providers/*', '**/src/shared/*', '**/contracts/records.js', '**/contracts/keys.js', 'zod', 'zod/v4'] },
      ],
    },
  },
);
