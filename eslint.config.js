import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { restrictedSyntax } from './eslint.rules.js';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'api/generated/**', 'charts/**', 'coverage/**', '.gpudiag/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // prettier wraps code at the same width (.prettierrc.json) but cannot split string and template literals or
    // comments: this keeps those from growing past it. URLs and regex literals cannot be split without harm.
    rules: {
      'max-len': ['error', { code: 140, ignoreUrls: true, ignoreRegExpLiterals: true }],
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-empty': ['error', { allowEmptyCatch: false }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-warning-comments': ['error', { terms: ['todo', 'fixme', 'xxx'], location: 'anywhere' }],
      'no-restricted-syntax': ['error', ...restrictedSyntax],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
