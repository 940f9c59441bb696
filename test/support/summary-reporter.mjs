/**
 * `npm test`'s reporter: a dot per test while the suite runs (. passed, X failed, s skipped,
 * t todo), then a short summary: what the tests printed (which MongoDB backend ran, …), every
 * skipped test with its reason, every failure with its full name, place, error and what its file
 * wrote to stderr, and the runner's own closing lines (# tests, # pass, # fail, # skipped, …).
 * The TAP reporter printed thousands of lines for a passing run; this prints a screen.
 */
import {inspect} from 'node:util';

const WIDTH = 80;
const STDERR_TAIL = 40;

/** The error a test failed with: the assertion inside the runner's wrapper, message and the first stack lines outside node internals. */
function describeError(error) {
  const inner = error?.cause && error.code === 'ERR_TEST_FAILURE' ? error.cause : error;
  if (inner === undefined || inner === null) return '';
  if (typeof inner !== 'object') return String(inner);
  const text = inner.stack ? String(inner.stack) : inspect(inner, {depth: 4});
  const lines = text.split('\n');
  const head = lines.filter((line) => !/^\s+at /.test(line));
  const frames = lines.filter((line) => /^\s+at /.test(line) && !/\(node:|node:internal|node_modules|Promise\.all/.test(line)).slice(0, 4);
  const extra = inner.code === 'ERR_ASSERTION' && inner.generatedMessage === false && 'actual' in inner ? [`actual: ${inspect(inner.actual, {depth: 3})}`, `expected: ${inspect(inner.expected, {depth: 3})}`] : [];
  return [...head, ...extra, ...frames].join('\n');
}

const indent = (text, by = '    ') => text.split('\n').map((line) => `${by}${line}`).join('\n');

export default async function* summaryReporter(source) {
  const names = new Map();
  const failures = [];
  const skipped = [];
  const notes = [];
  const stderr = new Map();
  const closing = [];
  let column = 0;
  const dot = (mark) => {
    column++;
    return column % WIDTH === 0 ? `${mark}\n` : mark;
  };
  const fullName = (data) => {
    const stack = names.get(data.file) ?? [];
    return [...stack.slice(0, data.nesting), data.name].join(' > ');
  };

  for await (const event of source) {
    const {type, data} = event;
    if (type === 'test:start') {
      const stack = names.get(data.file) ?? [];
      stack.length = data.nesting;
      stack[data.nesting] = data.name;
      names.set(data.file, stack);
    } else if (type === 'test:pass') {
      if (data.details?.type === 'suite') continue;
      if (data.skip !== undefined && data.skip !== false) {
        skipped.push({name: fullName(data), reason: typeof data.skip === 'string' ? data.skip : '', file: data.file});
        yield dot('s');
      } else if (data.todo !== undefined && data.todo !== false) yield dot('t');
      else yield dot('.');
    } else if (type === 'test:fail') {
      const error = data.details?.error;
      // A suite fails because a test inside it did: that test is listed already.
      if (error?.failureType === 'subtestsFailed') continue;
      failures.push({name: fullName(data), file: data.file, line: data.line, error: describeError(error)});
      yield dot('X');
    } else if (type === 'test:stdout') {
      for (const line of String(data.message).split('\n')) if (line.trim() !== '') notes.push(line);
    } else if (type === 'test:stderr') {
      const lines = stderr.get(data.file) ?? [];
      lines.push(...String(data.message).split('\n').filter((line) => line.trim() !== ''));
      stderr.set(data.file, lines.slice(-STDERR_TAIL));
    } else if (type === 'test:diagnostic' && data.nesting === 0) {
      closing.push(`# ${data.message}`);
    }
  }

  const out = ['\n'];
  if (notes.length > 0) out.push('\nNotes from the tests:\n', ...notes.map((n) => `  ${n}\n`));
  if (skipped.length > 0) out.push(`\nSkipped (${skipped.length}):\n`, ...skipped.map((s) => `  - ${s.name}${s.reason ? `: ${s.reason}` : ''}\n`));
  if (failures.length > 0) {
    out.push(`\nFailed (${failures.length}):\n`);
    for (const f of failures) {
      out.push(`\n✖ ${f.name}\n  ${f.file ?? ''}${f.line ? `:${f.line}` : ''}\n`);
      if (f.error) out.push(`${indent(f.error)}\n`);
    }
    const files = [...new Set(failures.map((f) => f.file))].filter((file) => stderr.has(file));
    for (const file of files) out.push(`\nstderr of ${file} (last ${STDERR_TAIL} lines):\n${indent(stderr.get(file).join('\n'), '  | ')}\n`);
  }
  out.push('\n', ...closing.map((line) => `${line}\n`));
  yield out.join('');
}
