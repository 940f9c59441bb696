// Mutation testing of the modules where a silent bug loses data or leaks a secret: `npm run mutate`
// (all scopes) or `MUTATE_SCOPE=redact npm run mutate` (one scope, or several separated by commas).
// Each scope mutates a few modules and runs only the test files that exercise them, fastest first.
// Not part of `npm test` or CI: a scope takes minutes to hours on a 2-core machine. Results and every
// survivor's fate are kept in bench/MUTATION.md.
//
// Test files run one process each through Node's test runner with tsx (the tap runner). Tests that
// spawn bin/run.js run the sandbox's dist/, so scopes with such tests build it from the mutated
// sources first, and run every listed file for every mutant: the runner cannot see coverage in a
// child process, and with per-test coverage a mutant only the CLI reaches would be called uncovered.

import process from 'node:process';

/** @type {Record<string, {mutate: string[]; tests: string[]; cli?: boolean}>} */
const SCOPES = {
  redact: {
    mutate: ['src/config/redact.ts'],
    tests: ['test/unit/redact-shapes.test.ts', 'test/unit/redact-spellings.test.ts', 'test/unit/redact.test.ts'],
  },
  clash: {
    mutate: ['src/target/unique.ts'],
    tests: ['test/integration/target-clash-kinds.test.ts', 'test/e2e/cli-target-guards.test.ts', 'test/integration/target-push.test.ts'],
    cli: true,
  },
  gate: {
    mutate: ['src/target/gates.ts'],
    tests: ['test/unit/target-gates-edges.test.ts', 'test/unit/target-gates.test.ts'],
  },
  exact: {
    mutate: ['src/target/exact.ts', 'src/target/round-trip.ts'],
    tests: ['test/unit/round-trip.test.ts', 'test/unit/target-classify.test.ts', 'test/e2e/cli-target-guards.test.ts', 'test/e2e/cli-fidelity.test.ts'],
    cli: true,
  },
  verify: {
    mutate: ['src/target/verify.ts'],
    tests: ['test/e2e/cli-target-guards.test.ts', 'test/integration/target-push.test.ts'],
    cli: true,
  },
  rollback: {
    mutate: ['src/target/rollback.ts'],
    tests: ['test/integration/target-rollback.test.ts'],
  },
  target: {
    mutate: ['src/target/**/*.ts', '!src/target/unique.ts', '!src/target/gates.ts', '!src/target/exact.ts', '!src/target/round-trip.ts', '!src/target/verify.ts', '!src/target/rollback.ts'],
    tests: [
      'test/unit/target-raw-reads.test.ts',
      'test/unit/target-ledger.test.ts',
      'test/integration/target-write.test.ts',
      'test/integration/target-push.test.ts',
      'test/integration/target-rollback.test.ts',
      'test/e2e/cli-target-guards.test.ts',
      'test/e2e/cli-fidelity.test.ts',
      'test/e2e/cli-promote.test.ts',
    ],
    cli: true,
  },
  query: {
    mutate: ['src/query/**/*.ts'],
    tests: [
      'test/unit/query-parse.test.ts',
      'test/unit/query-match.test.ts',
      'test/unit/query-in-place.test.ts',
      'test/unit/query-lazy-equivalence.test.ts',
      'test/unit/query-oracle.test.ts',
    ],
  },
};

const names = (process.env.MUTATE_SCOPE ?? Object.keys(SCOPES).join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const name of names) {
  if (!SCOPES[name]) throw new Error(`MUTATE_SCOPE: no scope "${name}"; known scopes: ${Object.keys(SCOPES).join(', ')}`);
}
const chosen = names.map((n) => SCOPES[n]);
const cli = chosen.some((s) => s.cli);
const label = names.join('+');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  mutate: [...new Set(chosen.flatMap((s) => s.mutate))],
  tap: {
    testFiles: [...new Set(chosen.flatMap((s) => s.tests))],
    nodeArgs: ['--import', 'tsx', '--test-reporter=tap', '-r', '{{hookFile}}', '{{testFile}}'],
    forceBail: true,
  },
  coverageAnalysis: cli ? 'off' : 'perTest',
  ...(cli ? {buildCommand: 'npm run --silent build'} : {}),
  // Two cores shared with others; the tests start servers of their own.
  concurrency: 1,
  timeoutMS: 60_000,
  timeoutFactor: 2,
  tempDirName: '.tmp/stryker',
  ignorePatterns: ['dist', '.tmp', 'bench/.data', 'reports', 'coverage'],
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: {fileName: `.tmp/mutation/${label}.json`},
  clearTextReporter: {allowColor: false, logTests: false, maxTestsToLog: 0},
  thresholds: {high: 90, low: 75, break: null},
};
