/**
 * `npm run demo`: the whole incident, end to end, on a local sandbox.
 *
 * 1. start the sandbox (local S3 + staging and production MongoDB);
 * 2. generate a gravity-like database and its backups (daily: every collection; hourly: a few),
 *    as .tar.gz objects in S3 named in New York time without an offset;
 * 3. load staging and production as they stand after the incident: one partner's artworks and
 *    their dependents deleted, a few of them edited after the last backup instead;
 * 4. run the real CLI: list → fetch → diff (what production lost, with no query known) →
 *    extract --missing-in production --follow → plan → push staging → verify → push production →
 *    verify → report;
 * 5. part two, what no backup holds: a new backup, then an artwork created and one edited, then
 *    the partner's artworks deleted again; extract --at rebuilds them from the backup plus
 *    production's oplog, and the same gates put them back;
 * 6. exit 0 only if production holds the lost documents again, byte for byte, the edited ones are
 *    untouched, and part two's documents are back as they were just before the second deletion.
 */
import {spawn} from 'node:child_process';
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

import {PutObjectCommand, S3Client} from '@aws-sdk/client-s3';
import {BSON, type Document, ObjectId} from 'bson';
import {MongoClient} from 'mongodb';

import {COLLECTIONS, DB, generateGravity, RELATIONS, snapshot, writeBackupTarGz, writeRawBackupTarGz, type Doc} from './demo/data.js';
import {startSandbox} from './sandbox-lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PREFIX = 'db/backup/';
const SOURCE_TZ = 'America/New_York';
const HOURLY_COLLECTIONS = ['partners', 'artworks', 'sale_artworks', 'partner_artist_artworks'];
// All times below are New York wall clock (EST, UTC-5, in November).
const est = (day: number, hour: number, minute = 0) => new Date(Date.UTC(2026, 10, day, hour + 5, minute));
const EDITED_AT = est(18, 14, 10);
const INCIDENT_AT = est(18, 14, 30);
const NOW = est(18, 15, 30);

/** What the demo did, for a test to check against the servers before they stop. */
export interface DemoOutcome {
  production: string;
  /** Each CLI run in order: the command (and target), and its exit code. */
  steps: Array<{command: string; code: number | null}>;
  /** The lost documents as the backup holds them: what production must hold again, byte for byte. */
  lost: Array<{collection: string; bytes: Buffer}>;
  /** The artworks edited after the backup, as production held them before the restore. */
  edited: Array<{collection: string; bytes: Buffer}>;
  /**
   * Part two: what production held just before the second deletion (read raw then), among them an
   * artwork created and one edited after the last backup: what `extract --at` must give back.
   */
  beforeSecondIncident: Array<{collection: string; bytes: Buffer}>;
}

export interface DemoOptions {
  /** Where the demo's narration and the CLI's output go (default: this process's stdout). */
  write?: (text: string) => void;
  /** Called after part one's restore (before part two writes again), while the sandbox still runs. */
  inspectRestore?: (outcome: Pick<DemoOutcome, 'production' | 'lost' | 'edited'>) => Promise<void>;
  /** Called after part two's restore, while the sandbox still runs. */
  inspect?: (outcome: DemoOutcome) => Promise<void>;
}

export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const step = (title: string) => write(`\n\x1b[1m== ${title}\x1b[0m\n`);
  const steps: DemoOutcome['steps'] = [];
  const work = await mkdtemp(path.join(os.tmpdir(), 'gravity-restore-demo-'));
  step('Starting the sandbox');
  const sandbox = await startSandbox();
  write(`S3 ${sandbox.info.s3.endpoint}, staging ${sandbox.info.staging}, production ${sandbox.info.production} (MongoDB: ${sandbox.info.mongo})\n`);
  write(`MongoDB backend: ${sandbox.info.mongoDetail}\n`);
  try {
    const data = generateGravity();
    const partnerArtworks = data.collections.artworks.filter((a) => (a.doc.partner_id as ObjectId).equals(data.partnerId));
    const inLastBackup = partnerArtworks.filter((a) => a.createdAt <= est(18, 14));
    const edited = inLastBackup.slice(-3);
    const deleted = inLastBackup.slice(0, -3);
    const deletedIds = new Set(deleted.map((a) => (a.doc._id as ObjectId).toHexString()));
    const editedIds = new Set(edited.map((a) => (a.doc._id as ObjectId).toHexString()));
    const isLost = (collection: string, d: Document) =>
      collection === 'artworks' ? deletedIds.has((d._id as ObjectId).toHexString()) : 'artwork_id' in d && deletedIds.has((d.artwork_id as ObjectId).toHexString());
    /** The database as it stood at `at`: the incident removed the lost documents at INCIDENT_AT. */
    const stateAt = (collection: string, docs: Doc[], at: Date) => snapshot(docs, at).filter((d) => at < INCIDENT_AT || !isLost(collection, d));

    step('Writing backups to S3 (daily: all collections; hourly: a few)');
    const s3 = s3Client(sandbox);
    await mkdir(path.join(work, 'uploads'), {recursive: true});
    const backups: Array<{key: string; at: Date; collections: readonly string[]}> = [];
    for (const day of [15, 16, 17, 18]) backups.push({key: `gravity-daily-2026-11-${day}.tar.gz`, at: est(day, 0), collections: COLLECTIONS});
    for (let hour = 10; hour <= 15; hour++) {
      backups.push({key: `gravity-hourly-2026-11-18-${String(hour).padStart(2, '0')}-00.tar.gz`, at: est(18, hour), collections: HOURLY_COLLECTIONS});
    }
    for (const backup of backups) {
      const file = path.join(work, 'uploads', backup.key);
      const collections: Record<string, Document[]> = {};
      for (const c of backup.collections) collections[c] = stateAt(c, data.collections[c as keyof typeof data.collections], backup.at);
      await writeBackupTarGz(file, collections);
      const body = await readFile(file);
      await s3.send(new PutObjectCommand({Bucket: sandbox.info.s3.bucket, Key: PREFIX + backup.key, Body: body}));
      write(`  s3://${sandbox.info.s3.bucket}/${PREFIX}${backup.key} (${(body.length / 1e6).toFixed(1)} MB)\n`);
    }

    step('Loading staging and production as they are after the incident');
    const editedDoc = (d: Document): Document => ({...d, title: `${d.title as string} (edited)`, published: false, updated_at: EDITED_AT});
    for (const uri of [sandbox.info.staging, sandbox.info.production]) {
      const client = await MongoClient.connect(uri);
      try {
        const db = client.db();
        for (const c of COLLECTIONS) {
          const docs = stateAt(c, data.collections[c], NOW).map((d) => (c === 'artworks' && editedIds.has((d._id as ObjectId).toHexString()) ? editedDoc(d) : d));
          for (let i = 0; i < docs.length; i += 1000) await db.collection(c).insertMany(docs.slice(i, i + 1000), {ordered: false});
        }
      } finally {
        await client.close();
      }
    }
    const lostCounts = Object.fromEntries(COLLECTIONS.map((c) => [c, snapshot(data.collections[c], est(18, 14)).filter((d) => isLost(c, d)).length]));
    write(
      `Incident at 2026-11-18 14:30 New York time: partner ${data.partnerId.toHexString()} lost ${lostCounts.artworks} artworks, ` +
        `${lostCounts.sale_artworks} sale_artworks, ${lostCounts.partner_artist_artworks} partner_artist_artworks; ${edited.length} of its artworks were edited at 14:10 instead.\n`,
    );

    await writeFile(path.join(work, 'gravity-restore.config.json'), `${JSON.stringify({sourceTz: SOURCE_TZ, relations: RELATIONS}, null, 2)}\n`);
    const env = {
      ...process.env,
      ...sandbox.env,
      GRAVITY_RESTORE_SOURCE: `s3://${sandbox.info.s3.bucket}/${PREFIX}`,
      GRAVITY_RESTORE_CACHE: path.join(work, 'cache'),
      GRAVITY_RESTORE_TZ: SOURCE_TZ,
    };
    // Asynchronous on purpose: the sandbox's MongoDB test servers may run in this process.
    const cli = (args: string[], cliOptions: {quiet?: boolean} = {}) =>
      new Promise<string>((resolve, reject) => {
        if (!cliOptions.quiet) write(`\n\x1b[36m$ gravity-restore ${args.map((a) => (/[\s"{}()]/.test(a) ? `'${a}'` : a)).join(' ')}\x1b[0m\n`);
        const child = spawn(process.execPath, [path.join(root, 'bin/run.js'), ...args], {cwd: work, env, stdio: ['ignore', 'pipe', 'pipe']});
        let out = '';
        let err = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (!cliOptions.quiet) write(chunk.toString());
        });
        child.stderr.on('data', (chunk: Buffer) => {
          err += chunk.toString();
          if (!cliOptions.quiet) write(chunk.toString());
        });
        child.on('error', reject);
        child.on('close', (code) => {
          const to = args.indexOf('--to');
          steps.push({command: to > 0 ? `${args[0]} ${args[to + 1]}` : args[0]!, code});
          if (code === 0) resolve(out);
          else reject(new Error(`gravity-restore ${args[0]} exited with ${code}${cliOptions.quiet ? `:\n${out}${err}` : ''}`));
        });
      });

    step('1. Find the backup taken before the incident (names are New York time)');
    await cli(['list', '--before', '2026-11-18 14:30', '--collection', 'artworks']);
    const selected = (JSON.parse(await cli(['list', '--before', '2026-11-18 14:30', '--collection', 'artworks', '--json'], {quiet: true})) as {selected: string}).selected;
    step('2. Fetch it (verified, cached, resumable) and unpack artworks');
    await cli(['fetch', selected, '--collection', 'artworks']);
    step('3. Nobody knows the query: diff the backup against production to see what is gone');
    await cli(['diff', selected, 'production']);
    step('4. Extract exactly what production lost (and the dependents it lost with it)');
    await cli(['extract', '--from', selected, '--collection', 'artworks', '--missing-in', 'production', '--follow', '--incident-at', '2026-11-18 14:30', '--out', 'restore-set']);
    step('5. Plan against staging, push, verify');
    await cli(['plan', 'restore-set', '--to', 'staging']);
    await cli(['push', 'restore-set', '--to', 'staging', '--yes']);
    await cli(['verify', 'restore-set', '--to', 'staging']);
    step('6. Push to production (gated on the verified staging push) and verify');
    await cli(['push', 'restore-set', '--to', 'production', '--confirm', DB]);
    await cli(['verify', 'restore-set', '--to', 'production']);
    step('7. The incident record');
    await cli(['report', 'restore-set']);

    const lost = COLLECTIONS.flatMap((c) => snapshot(data.collections[c], est(18, 14)).filter((d) => isLost(c, d)).map((d) => ({collection: c, bytes: Buffer.from(BSON.serialize(d))})));
    const editedNow = edited.map((a) => ({collection: 'artworks', bytes: Buffer.from(BSON.serialize(editedDoc(a.doc)))}));
    // Part one is read back before part two writes to the same artworks again.
    await options.inspectRestore?.({production: sandbox.info.production, lost, edited: editedNow});

    step('Checking production');
    const client = await MongoClient.connect(sandbox.info.production);
    let problems = 0;
    try {
      const db = client.db();
      for (const c of COLLECTIONS) {
        const expected = snapshot(data.collections[c], est(18, 14)).filter((d) => isLost(c, d));
        for (const doc of expected) {
          const raw = (await db.collection(c).findOne({_id: doc._id}, {raw: true})) as unknown as Buffer | null;
          if (!raw || !Buffer.from(raw).equals(BSON.serialize(doc))) problems++;
        }
        if (expected.length > 0) write(`  ${c}: ${expected.length} lost documents checked\n`);
      }
      for (const a of edited) {
        const now = await db.collection('artworks').findOne({_id: a.doc._id});
        if (!now || now.title !== `${a.doc.title as string} (edited)`) problems++;
      }
      write(`  artworks edited after the backup: ${edited.length} checked, untouched\n`);
    } finally {
      await client.close();
    }

    const beforeSecondIncident = await pointInTimeScene(sandbox, data.partnerId, work, step, write, cli);
    if (options.inspect) await options.inspect({production: sandbox.info.production, steps, lost, edited: editedNow, beforeSecondIncident});
    step('Checking production again');
    const again = await MongoClient.connect(sandbox.info.production);
    try {
      const db = again.db();
      for (const d of beforeSecondIncident) {
        const id = (BSON.deserialize(d.bytes) as {_id: unknown})._id;
        const raw = (await db.collection(d.collection).findOne({_id: id as ObjectId}, {raw: true})) as unknown as Buffer | null;
        if (!raw || !Buffer.from(raw).equals(d.bytes)) {
          problems++;
          write(`  part two: ${d.collection} ${JSON.stringify(id)} ${raw ? `differs: expected ${d.bytes.toString('hex')}, production holds ${Buffer.from(raw).toString('hex')}` : 'is missing'}\n`);
        }
      }
      write(`  part two: ${beforeSecondIncident.length} documents as they were just before the second deletion, created and edited after the last backup among them\n`);
    } finally {
      await again.close();
    }
    if (problems > 0) {
      write(`\nDEMO FAILED: ${problems} document(s) not as expected in production\n`);
      return 1;
    }
    write('\nProduction restored: every lost document is back byte for byte, and the edits made after the backup were left alone.\n');
    return 0;
  } finally {
    await sandbox.stop();
    await rm(work, {recursive: true, force: true});
  }
}

/** The sandbox's S3 server (s3rver needs checksums only when required: ENVIRONMENT.md). */
function s3Client(sandbox: Awaited<ReturnType<typeof startSandbox>>): S3Client {
  return new S3Client({
    endpoint: sandbox.info.s3.endpoint,
    region: sandbox.info.s3.region,
    forcePathStyle: true,
    credentials: {accessKeyId: sandbox.info.s3.accessKeyId, secretAccessKey: sandbox.info.s3.secretAccessKey},
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the start of the next second, so what follows has a later oplog second than what came before. */
async function nextSecond(): Promise<Date> {
  const next = Math.floor(Date.now() / 1000) * 1000 + 1000;
  await sleep(next - Date.now() + 20);
  return new Date(next);
}

/**
 * Part two: what no backup holds. An hourly backup of production is taken now; then an artwork is
 * created and another edited; then the partner's artworks are deleted again. The backup cannot give
 * back the new artwork or the edit; production's own oplog can: extract --at the second of the
 * deletion rebuilds the partner's artworks (and their dependents) as they were just before it.
 * Staging receives the same writes, as a copy of production would.
 */
async function pointInTimeScene(
  sandbox: Awaited<ReturnType<typeof startSandbox>>,
  partnerId: ObjectId,
  work: string,
  step: (title: string) => void,
  write: (text: string) => void,
  cli: (args: string[], options?: {quiet?: boolean}) => Promise<string>,
): Promise<Array<{collection: string; bytes: Buffer}>> {
  step('8. Part two: what no backup holds. A new hourly backup now, then an artwork created, another edited, then the partner\'s artworks deleted again');
  const production = await MongoClient.connect(sandbox.info.production);
  const staging = await MongoClient.connect(sandbox.info.staging);
  try {
    const prod = production.db();
    const taken = await nextSecond();
    const key = `gravity-hourly-${taken.toISOString().slice(0, 19).replace(/:/g, '-')}Z.tar.gz`;
    const raw: Record<string, Buffer[]> = {};
    for (const c of HOURLY_COLLECTIONS) raw[c] = ((await prod.collection(c).find({}, {raw: true}).toArray()) as unknown as Buffer[]).map((b) => Buffer.from(b));
    const file = path.join(work, 'uploads', key);
    await writeRawBackupTarGz(file, raw);
    const s3 = s3Client(sandbox);
    await s3.send(new PutObjectCommand({Bucket: sandbox.info.s3.bucket, Key: PREFIX + key, Body: await readFile(file)}));
    write(`  s3://${sandbox.info.s3.bucket}/${PREFIX}${key}: production at ${taken.toISOString()}\n`);
    await nextSecond();
    const created = {_id: new ObjectId(), partner_id: partnerId, title: 'Created after the backup', published: true, '2026': {price: 1200, currency: 'USD'}, created_at: new Date()};
    const someArtwork = (await prod.collection('artworks').findOne({partner_id: partnerId}, {sort: {_id: 1}}))!;
    for (const client of [production, staging]) {
      await client.db().collection('artworks').insertOne({...created});
      await client.db().collection('artworks').updateOne({_id: someArtwork._id}, {$set: {title: 'Edited after the backup', 'dimensions.height': 99.5}, $inc: {edition: 1}});
    }
    write(`  created artwork ${created._id.toHexString()}; edited artwork ${(someArtwork._id as ObjectId).toHexString()} (title, a nested field, a counter)\n`);
    const incident = await nextSecond();
    // What production holds just before the deletion, read raw: what the restore must give back.
    const ids = ((await prod.collection('artworks').find({partner_id: partnerId}, {projection: {_id: 1}}).toArray()) as Array<{_id: ObjectId}>).map((d) => d._id);
    const before: Array<{collection: string; bytes: Buffer}> = [];
    for (const [c, filter] of [['artworks', {_id: {$in: ids}}], ['sale_artworks', {artwork_id: {$in: ids}}], ['partner_artist_artworks', {artwork_id: {$in: ids}}]] as const) {
      for (const b of (await prod.collection(c).find(filter, {raw: true}).toArray()) as unknown as Buffer[]) before.push({collection: c, bytes: Buffer.from(b)});
    }
    for (const client of [production, staging]) {
      const db = client.db();
      await db.collection('sale_artworks').deleteMany({artwork_id: {$in: ids}});
      await db.collection('partner_artist_artworks').deleteMany({artwork_id: {$in: ids}});
      await db.collection('artworks').deleteMany({_id: {$in: ids}});
    }
    write(`  ${incident.toISOString()}: ${ids.length} artworks of partner ${partnerId.toHexString()} deleted again, with their dependents\n`);

    step('9. Rebuild them as they were just before the deletion, from the new backup plus production\'s oplog');
    const at = incident.toISOString().replace('.000Z', 'Z');
    await cli(['oplog', '--oplog', 'production']);
    await cli(['extract', '--at', at, '--oplog', 'production', '--collection', 'artworks', '--query', `{"partner_id": ObjectId("${partnerId.toHexString()}")}`, '--follow', '--out', 'restore-at']);
    step('10. The same gates as before: staging, verify, production, verify');
    await cli(['plan', 'restore-at', '--to', 'staging']);
    await cli(['push', 'restore-at', '--to', 'staging', '--yes']);
    await cli(['verify', 'restore-at', '--to', 'staging']);
    await cli(['push', 'restore-at', '--to', 'production', '--confirm', DB]);
    await cli(['verify', 'restore-at', '--to', 'production']);
    return before;
  } finally {
    await production.close();
    await staging.close();
  }
}

// Run as a script (`npm run demo`), not when a test imports runDemo.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runDemo().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
