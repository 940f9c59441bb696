/**
 * `db.coll` or `coll`, as --collection takes it. Its own module: the command's main thread needs
 * it, and the extract's reading code (which it would otherwise load) runs on a worker.
 */
export function splitNamespace(name: string): [string | null, string] {
  const dot = name.indexOf('.');
  // `system.x` and names whose first part is a known collection prefix are ambiguous; a db name never holds a dot.
  if (dot <= 0 || name.startsWith('system.')) return [null, name];
  return [name.slice(0, dot), name.slice(dot + 1)];
}
