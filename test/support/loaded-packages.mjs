/**
 * Preloaded with `node --import` (through NODE_OPTIONS) into a CLI run: records every module file
 * the process loads into the file LOADED_PACKAGES_FILE names, one path a line, so a test can tell
 * which npm packages a command needed. ES modules are seen as they resolve (loaded-packages-hooks.mjs);
 * CommonJS modules, which Node 20 requires without hooks, from require.cache at exit.
 */
import {appendFileSync, writeFileSync} from 'node:fs';
import {createRequire, register} from 'node:module';
import process from 'node:process';

const file = process.env.LOADED_PACKAGES_FILE;
if (file) {
  writeFileSync(file, '');
  register('./loaded-packages-hooks.mjs', import.meta.url, {data: {file}});
  const {cache} = createRequire(import.meta.url);
  process.on('exit', () => appendFileSync(file, Object.keys(cache).map((p) => `${p}\n`).join('')));
}
