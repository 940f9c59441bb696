/**
 * mingo, loaded on first use: a filter of conditions on single fields is matched without it
 * (compile.ts), so extracting by an equality or a range never pays for loading its ~300 modules.
 * Loaded with require, not import(): compiling a query is synchronous, and the package's `node`
 * export is its CommonJS build for import and require alike, so these are the same modules.
 */
import {createRequire} from 'node:module';

import type * as MingoIndex from 'mingo';
import type * as MingoLogical from 'mingo/operators/query/logical';
import type * as MingoQuery from 'mingo/query';

export interface Mingo {
  Context: typeof MingoIndex.Context;
  Query: typeof MingoQuery.Query;
  logical: Pick<typeof MingoLogical, '$and' | '$or' | '$nor' | '$not'>;
}

const load = createRequire(import.meta.url);
let loaded: Mingo | null = null;

export function loadMingo(): Mingo {
  loaded ??= {
    Context: (load('mingo') as typeof MingoIndex).Context,
    Query: (load('mingo/query') as typeof MingoQuery).Query,
    logical: load('mingo/operators/query/logical') as typeof MingoLogical,
  };
  return loaded;
}
