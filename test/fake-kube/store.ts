/**
 * The fake API server's object store: objects in memory, a global resourceVersion, an event log the
 * watches replay from, and server-side apply with field ownership.
 *
 * Server-side apply is simplified, and the simplifications are these: a field is a leaf path of the
 * applied object (a scalar, or a whole list: lists are atomic here, where the real server merges
 * lists keyed by `name`/`containerPort`); a manager owns the leaves it applied; applying a leaf that
 * another manager owns with a different value is a conflict unless `force`; a leaf this manager
 * applied before and no longer applies is removed when no one else owns it. `metadata.generation`
 * starts at 1 and bumps when anything outside `metadata` and `status` changes.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ApiResource } from './resources.ts';

export type Obj = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
};

export interface Metadata {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  ownerReferences?: Record<string, unknown>[];
  managedFields?: Record<string, unknown>[];
  [field: string]: unknown;
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  readonly type: EventType;
  readonly resource: ApiResource;
  readonly object: Obj;
  readonly resourceVersion: number;
}

/** A leaf path, JSON-encoded so keys with dots (`prometheus.io/scrape`) stay whole. */
type FieldKey = string;

export interface FieldConflictCause {
  readonly field: string;
  readonly manager: string;
  readonly apiVersion: string;
}

export class ApplyConflict extends Error {
  constructor(readonly causes: readonly FieldConflictCause[]) {
    super(`Apply failed with ${causes.length} conflict(s)`);
  }
}

interface Entry {
  readonly resource: ApiResource;
  object: Obj;
  /** manager → leaves it owns. */
  readonly owners: Map<string, Set<FieldKey>>;
}

export class Store {
  private readonly entries = new Map<string, Entry>();
  private readonly log: StoreEvent[] = [];
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private revision = 1;
  private uidCounter = 0;

  get resourceVersion(): number {
    return this.revision;
  }

  get(resource: ApiResource, namespace: string | undefined, name: string): Obj | undefined {
    return this.entries.get(key(resource, namespace, name))?.object;
  }

  list(resource: ApiResource, namespace?: string): Obj[] {
    const out: Obj[] = [];
    for (const entry of this.entries.values()) {
      if (entry.resource !== resource) continue;
      if (namespace !== undefined && entry.object.metadata.namespace !== namespace) continue;
      out.push(entry.object);
    }
    return out.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  /** Events after `resourceVersion`, for a watch that starts there. */
  eventsSince(resourceVersion: number): StoreEvent[] {
    return this.log.filter((e) => e.resourceVersion > resourceVersion);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Creates an object as a controller would (no field ownership tracked). */
  create(resource: ApiResource, object: Obj): Obj {
    const k = key(resource, object.metadata.namespace, object.metadata.name);
    if (this.entries.has(k)) throw new Error(`${k} already exists`);
    const stored = this.stamp(
      structuredClone(resource.kind === 'Secret' ? withStringDataEncoded(object) : object),
      undefined,
    );
    this.entries.set(k, { resource, object: stored, owners: new Map() });
    this.emit('ADDED', resource, stored);
    return stored;
  }

  /**
   * Replaces an object's content through `mutate` (a controller's update, e.g. status); emits
   * MODIFIED when anything changed.
   */
  update(resource: ApiResource, namespace: string | undefined, name: string, mutate: (o: Obj) => void): Obj {
    const entry = this.entries.get(key(resource, namespace, name));
    if (!entry) throw new Error(`${resource.kind} ${namespace}/${name} not found`);
    const next = structuredClone(entry.object);
    mutate(next);
    if (isDeepStrictEqual(next, entry.object)) return entry.object;
    entry.object = this.stamp(next, entry.object);
    this.emit('MODIFIED', resource, entry.object);
    return entry.object;
  }

  remove(resource: ApiResource, namespace: string | undefined, name: string): Obj | undefined {
    const k = key(resource, namespace, name);
    const entry = this.entries.get(k);
    if (!entry) return undefined;
    this.entries.delete(k);
    const gone = structuredClone(entry.object);
    this.revision += 1;
    gone.metadata.resourceVersion = String(this.revision);
    this.emit('DELETED', resource, gone);
    return gone;
  }

  /**
   * Server-side apply of `patch` by `manager`. Throws ApplyConflict when another manager owns a leaf
   * the patch sets to a different value and `force` is false.
   */
  apply(
    resource: ApiResource,
    patch: Obj,
    manager: string,
    force: boolean,
  ): { object: Obj; created: boolean } {
    if (resource.kind === 'Secret') patch = withStringDataEncoded(patch);
    const namespace = resource.namespaced ? patch.metadata.namespace : undefined;
    const k = key(resource, namespace, patch.metadata.name);
    const entry = this.entries.get(k);
    const applied = leaves(withoutIdentity(patch));
    if (!entry) {
      const object = this.stamp(
        structuredClone({ ...patch, metadata: { ...patch.metadata, ...(namespace ? { namespace } : {}) } }),
        undefined,
      );
      // The namespace controller's part, done at creation as the real registry does.
      if (resource.kind === 'Namespace') object.status = { phase: 'Active' };
      const owners = new Map([[manager, new Set(applied.keys())]]);
      object.metadata.managedFields = managedFields(owners, patch.apiVersion);
      this.entries.set(k, { resource, object, owners });
      this.emit('ADDED', resource, object);
      return { object, created: true };
    }
    const current = entry.object;
    const conflicts: FieldConflictCause[] = [];
    for (const [field, value] of applied) {
      const path = JSON.parse(field) as string[];
      if (isDeepStrictEqual(getPath(current, path), value)) continue;
      for (const [other, fields] of entry.owners) {
        if (other !== manager && fields.has(field)) {
          conflicts.push({ field: displayPath(path), manager: other, apiVersion: patch.apiVersion });
        }
      }
    }
    if (conflicts.length > 0 && !force) throw new ApplyConflict(conflicts);

    const next = structuredClone(current);
    const previouslyMine = entry.owners.get(manager) ?? new Set<FieldKey>();
    for (const field of previouslyMine) {
      if (applied.has(field)) continue;
      const ownedElsewhere = [...entry.owners].some(([m, f]) => m !== manager && f.has(field));
      if (!ownedElsewhere) deletePath(next, JSON.parse(field) as string[]);
    }
    for (const [field, value] of applied) {
      setPath(next, JSON.parse(field) as string[], structuredClone(value));
      const changed = !isDeepStrictEqual(getPath(current, JSON.parse(field) as string[]), value);
      if (changed) for (const [m, f] of entry.owners) if (m !== manager) f.delete(field);
    }
    entry.owners.set(manager, new Set(applied.keys()));
    for (const [m, f] of entry.owners) if (f.size === 0) entry.owners.delete(m);
    next.metadata.managedFields = managedFields(
      entry.owners,
      patch.apiVersion,
      current.metadata.managedFields,
    );
    if (isDeepStrictEqual(next, current)) return { object: current, created: false };
    entry.object = this.stamp(next, current);
    this.emit('MODIFIED', resource, entry.object);
    return { object: entry.object, created: false };
  }

  /** Gives `manager` ownership of fields, as an imperative `kubectl scale` would (for conflict tests). */
  own(
    resource: ApiResource,
    namespace: string | undefined,
    name: string,
    manager: string,
    fields: string[][],
  ) {
    const entry = this.entries.get(key(resource, namespace, name));
    if (!entry) throw new Error(`${resource.kind} ${namespace}/${name} not found`);
    const owned = entry.owners.get(manager) ?? new Set<FieldKey>();
    for (const path of fields) {
      const field = JSON.stringify(path);
      owned.add(field);
      for (const [m, f] of entry.owners) if (m !== manager) f.delete(field);
    }
    entry.owners.set(manager, owned);
  }

  /** Sets resourceVersion, uid, creationTimestamp and generation on a new or changed object. */
  private stamp(next: Obj, previous: Obj | undefined): Obj {
    this.revision += 1;
    const meta = next.metadata;
    meta.resourceVersion = String(this.revision);
    if (!previous) {
      this.uidCounter += 1;
      meta.uid = `00000000-0000-4000-8000-${String(this.uidCounter).padStart(12, '0')}`;
      meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      meta.generation = 1;
    } else {
      meta.uid = previous.metadata.uid;
      meta.creationTimestamp = previous.metadata.creationTimestamp;
      const generation = previous.metadata.generation ?? 1;
      meta.generation = isDeepStrictEqual(specOf(next), specOf(previous)) ? generation : generation + 1;
    }
    return next;
  }

  private emit(type: EventType, resource: ApiResource, object: Obj) {
    const event: StoreEvent = { type, resource, object, resourceVersion: this.revision };
    this.log.push(event);
    for (const listener of [...this.listeners]) listener(event);
  }
}

function key(resource: ApiResource, namespace: string | undefined, name: string): string {
  return `${resource.groupVersion}/${resource.plural}/${resource.namespaced ? (namespace ?? '') : ''}/${name}`;
}

/** A Secret's `stringData` is write-only: the API server stores it base64-encoded in `data`. */
function withStringDataEncoded(secret: Obj): Obj {
  const { stringData, ...rest } = secret as Obj & { stringData?: Record<string, string> };
  if (!stringData) return secret;
  const encoded = Object.fromEntries(
    Object.entries(stringData).map(([k, v]) => [k, Buffer.from(String(v)).toString('base64')]),
  );
  return { ...rest, data: { ...(rest.data as Record<string, string> | undefined), ...encoded } };
}

/** Everything but metadata and status: what bumps generation when it changes. */
function specOf(o: Obj): unknown {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

/** The patch without the fields that identify it (those are nobody's to own). */
function withoutIdentity(patch: Obj): Record<string, unknown> {
  const { apiVersion: _a, kind: _k, status: _s, metadata, ...rest } = patch;
  const { name: _n, namespace: _ns, resourceVersion: _rv, managedFields: _mf, ...meta } = metadata;
  return Object.keys(meta).length > 0 ? { ...rest, metadata: meta } : rest;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Leaf path (JSON-encoded) → value: scalars, lists (atomic) and empty maps. */
export function leaves(
  o: Record<string, unknown>,
  prefix: string[] = [],
  out = new Map<FieldKey, unknown>(),
) {
  for (const [k, v] of Object.entries(o)) {
    const path = [...prefix, k];
    if (isPlainObject(v) && Object.keys(v).length > 0) leaves(v, path, out);
    else out.set(JSON.stringify(path), v);
  }
  return out;
}

export function getPath(o: unknown, path: readonly string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function setPath(o: Record<string, unknown>, path: readonly string[], value: unknown) {
  let cur = o;
  for (const p of path.slice(0, -1)) {
    if (!isPlainObject(cur[p])) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
}

function deletePath(o: Record<string, unknown>, path: readonly string[]) {
  const parents: Record<string, unknown>[] = [];
  let cur = o;
  for (const p of path.slice(0, -1)) {
    if (!isPlainObject(cur[p])) return;
    parents.push(cur);
    cur = cur[p] as Record<string, unknown>;
  }
  delete cur[path[path.length - 1] as string];
  // Prune maps the removal left empty, as the real server does for fields no one owns.
  for (let i = path.length - 2; i >= 0; i--) {
    const parent = parents[i] as Record<string, unknown>;
    const child = parent[path[i] as string];
    if (isPlainObject(child) && Object.keys(child).length === 0) delete parent[path[i] as string];
    else break;
  }
}

/** `.spec.replicas`, `.metadata.labels.app` — the `field` of a real FieldManagerConflict cause. */
export function displayPath(path: readonly string[]): string {
  return path.map((p) => `.${p}`).join('');
}

/** managedFields in the real FieldsV1 shape (`{"f:spec":{"f:replicas":{}}}`). */
function managedFields(
  owners: Map<string, Set<FieldKey>>,
  apiVersion: string,
  previous: readonly Record<string, unknown>[] = [],
): Record<string, unknown>[] {
  const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return [...owners].map(([manager, fields]) => {
    const fieldsV1: Record<string, unknown> = {};
    for (const field of fields) {
      let cur = fieldsV1;
      for (const p of JSON.parse(field) as string[]) {
        const k = `f:${p}`;
        cur[k] ??= {};
        cur = cur[k] as Record<string, unknown>;
      }
    }
    // An entry whose fields did not change keeps its time, so a no-op apply changes nothing.
    const before = previous.find((e) => e.manager === manager);
    const unchanged = before && isDeepStrictEqual(before.fieldsV1, fieldsV1);
    return {
      manager,
      operation: 'Apply',
      apiVersion,
      time: unchanged ? before.time : time,
      fieldsType: 'FieldsV1',
      fieldsV1,
    };
  });
}
