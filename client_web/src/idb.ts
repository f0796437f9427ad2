// Minimal promise wrapper over IndexedDB: the outbox and the sync cursor survive a page reload.
const DB_NAME = "brygga";
const DB_VERSION = 1;
export const OUTBOX = "outbox";
export const META = "meta";

let opening: Promise<IDBDatabase> | null = null;

function open(): Promise<IDBDatabase> {
  opening ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(OUTBOX)) db.createObjectStore(OUTBOX, { keyPath: "client_id" });
      if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return opening;
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function store(name: string, mode: IDBTransactionMode): Promise<IDBObjectStore> {
  return (await open()).transaction(name, mode).objectStore(name);
}

export async function idbGet<T>(name: string, key: IDBValidKey): Promise<T | undefined> {
  return done((await store(name, "readonly")).get(key)) as Promise<T | undefined>;
}

export async function idbAll<T>(name: string): Promise<T[]> {
  return done((await store(name, "readonly")).getAll()) as Promise<T[]>;
}

export async function idbPut(name: string, value: unknown, key?: IDBValidKey): Promise<void> {
  await done((await store(name, "readwrite")).put(value, key));
}

export async function idbDelete(name: string, key: IDBValidKey): Promise<void> {
  await done((await store(name, "readwrite")).delete(key));
}
