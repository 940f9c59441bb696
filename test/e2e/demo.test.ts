import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import {it} from 'node:test';

import {runDemo, type DemoOutcome} from '../../scripts/demo.js';

const PYTHON = '/usr/bin/python3';
const hasPymongo = spawnSync(PYTHON, ['-c', 'import pymongo, bson'], {stdio: 'ignore'}).status === 0;

/**
 * Reads documents back from a server with pymongo's RawBSONDocument: the exact bytes stored, through
 * a client and BSON library that are not this project's. Prints, per request, base64 BSON or null.
 */
const READ_RAW = `
import base64, json, sys
import bson
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
req = json.load(sys.stdin)
client = MongoClient(req["uri"], document_class=RawBSONDocument)
db = client.get_default_database()
out = []
for item in req["docs"]:
    _id = bson.decode(base64.b64decode(item["bytes"]))["_id"]
    found = db[item["collection"]].find_one({"_id": _id})
    out.append(None if found is None else base64.b64encode(found.raw).decode())
client.close()
print(json.dumps(out))
`;

function readRaw(uri: string, docs: Array<{collection: string; bytes: Buffer}>): Promise<Array<Buffer | null>> {
  return new Promise((resolve, reject) => {
    // Asynchronous: the sandbox's MongoDB test servers run in this process and must keep answering.
    const child = spawn(PYTHON, ['-c', READ_RAW], {stdio: ['pipe', 'pipe', 'pipe']});
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`pymongo read failed (${code}): ${stderr}`));
      resolve((JSON.parse(stdout) as Array<string | null>).map((b) => (b === null ? null : Buffer.from(b, 'base64'))));
    });
    child.stdin.end(JSON.stringify({uri, docs: docs.map((d) => ({collection: d.collection, bytes: d.bytes.toString('base64')}))}));
  });
}

it(
  'the demo restores production end to end through the real CLI (S3 → list → fetch → extract → plan → push → verify)',
  {timeout: 300_000, skip: hasPymongo ? false : `${PYTHON} lacks pymongo (apt-get install python3-pymongo)`},
  async () => {
    let output = '';
    let outcome: DemoOutcome | null = null;
    let lostAsStored: Array<Buffer | null> = [];
    let editedAsStored: Array<Buffer | null> = [];
    let atAsStored: Array<Buffer | null> = [];
    const code = await runDemo({
      write: (text) => (output += text),
      inspectRestore: async (o) => {
        lostAsStored = await readRaw(o.production, o.lost);
        editedAsStored = await readRaw(o.production, o.edited);
      },
      inspect: async (o) => {
        outcome = o;
        atAsStored = await readRaw(o.production, o.beforeSecondIncident);
      },
    });
    assert.equal(code, 0, output.slice(-4000));
    assert.ok(outcome, 'the demo reached the restore');
    const {steps, lost, edited, beforeSecondIncident} = outcome as DemoOutcome;

    // The runbook, in order, each step successful: staging proven before production is touched.
    assert.deepEqual(steps, [
      {command: 'list', code: 0},
      {command: 'list', code: 0},
      {command: 'fetch', code: 0},
      {command: 'diff', code: 0},
      {command: 'extract', code: 0},
      {command: 'plan staging', code: 0},
      {command: 'push staging', code: 0},
      {command: 'verify staging', code: 0},
      {command: 'push production', code: 0},
      {command: 'verify production', code: 0},
      {command: 'report', code: 0},
      {command: 'oplog', code: 0},
      {command: 'extract', code: 0},
      {command: 'plan staging', code: 0},
      {command: 'push staging', code: 0},
      {command: 'verify staging', code: 0},
      {command: 'push production', code: 0},
      {command: 'verify production', code: 0},
    ]);
    assert.match(output, /Selected: gravity-hourly-2026-11-18-14-00\.tar\.gz/, 'the 14:00 New York backup is the one before the 14:30 incident');
    // diff found the loss without a query: as many artworks missing from production as were lost.
    const lostArtworks = lost.filter((d) => d.collection === 'artworks').length;
    assert.match(output, new RegExp(`\\n\\s*artworks\\s+${lostArtworks}\\s+3\\s+\\d+\\s+not scanned`), 'diff: the lost artworks missing, the three edited ones changed');

    // Every lost document is back in production exactly as the backup held it, read by pymongo.
    const collections = new Set(lost.map((d) => d.collection));
    assert.deepEqual([...collections].sort(), ['artworks', 'partner_artist_artworks', 'sale_artworks']);
    assert.ok(lost.length > 10, `${lost.length} lost documents`);
    lost.forEach((d, i) => assert.ok(lostAsStored[i]?.equals(d.bytes), `${d.collection} document ${i} is ${lostAsStored[i] ? 'different' : 'missing'} in production`));

    // The three artworks edited after the backup are untouched: still the edited bytes.
    assert.equal(edited.length, 3);
    edited.forEach((d, i) => assert.ok(editedAsStored[i]?.equals(d.bytes), `edited artwork ${i} was ${editedAsStored[i] ? 'overwritten' : 'deleted'}`));
    // Part two: rebuilt from a backup plus production's own oplog, the documents are back exactly as
    // production held them just before the second deletion (read raw by the driver then, by pymongo now),
    // the artwork created and the one edited after that backup among them.
    assert.ok(beforeSecondIncident.some((d) => d.bytes.includes(Buffer.from('Created after the backup'))), 'the artwork created after the backup is among them');
    assert.ok(beforeSecondIncident.some((d) => d.bytes.includes(Buffer.from('Edited after the backup'))), 'the artwork edited after the backup is among them');
    beforeSecondIncident.forEach((d, i) => assert.ok(atAsStored[i]?.equals(d.bytes), `${d.collection} document ${i} is ${atAsStored[i] ? 'different' : 'missing'} after extract --at`));
    assert.match(output, /as in the backup, \d+ replayed, 1 created after it/, 'extract --at says what it replayed');
    const backend = /MongoDB: ([\w-]+)/.exec(output)?.[1];
    console.log(`demo ran against MongoDB backend: ${backend}`);
  },
);
