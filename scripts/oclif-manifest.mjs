/**
 * Writes oclif.manifest.json from the built commands (run after `tsc`). With it, a CLI run loads
 * only the command it runs; without it, oclif imports every command module at start-up to learn
 * their flags, which costs start-up time and leaves a heap that makes V8 collect more often
 * during long streaming work. Measured: `--version` 0.17 s without, 0.13 s with.
 * The file is made by every build from the built commands, so it never describes other flags than
 * the code has.
 */
import {rename, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import {Plugin} from '@oclif/core';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true});
await plugin.load();
const file = path.join(root, 'oclif.manifest.json');
await writeFile(`${file}.tmp`, `${JSON.stringify(plugin.manifest, null, 2)}\n`);
await rename(`${file}.tmp`, file);
