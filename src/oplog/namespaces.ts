/** Collections named on the command line (`coll` or `db.coll`) as a test on an oplog namespace. */
export interface CollectionFilter {
  /** Whether a `db.coll` namespace is one of them (all, when none was named). */
  matters(ns: string): boolean;
  /** Full namespaces for a live oplog's server-side filter; null when a bare name (any database) or none was given. */
  serverHint: string[] | null;
}

export function collectionFilter(collections: readonly string[]): CollectionFilter {
  if (collections.length === 0) return {matters: () => true, serverHint: null};
  const full = new Set(collections.filter((c) => c.includes('.')));
  const bare = new Set(collections.filter((c) => !c.includes('.')));
  return {
    matters: (ns) => full.has(ns) || bare.has(ns.slice(ns.indexOf('.') + 1)),
    serverHint: bare.size === 0 ? [...full] : null,
  };
}

/** The collection part of `db.coll`. */
export function collectionOf(ns: string): string {
  return ns.slice(ns.indexOf('.') + 1);
}
