/**
 * The browser's secret-key store: sealed key records (key-record.ts) in IndexedDB (database
 * `cipherml`, store `keys`, one record per user and model).
 */
import type { KeyRecord } from './key-record.ts';

export { openSecretKey, recordFromService, sealSecretKey, serviceBytes } from './key-record.ts';
export type { KeyRecord, KeyRecordV2, KeyRecordV3 } from './key-record.ts';

function db(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open('cipherml', 2);
    req.onupgradeneeded = () => {
      // Version 1 held SEAL-format keys not bound to a model: unusable by the trainer, dropped.
      if (req.result.objectStoreNames.contains('keys')) req.result.deleteObjectStore('keys');
      req.result.createObjectStore('keys');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB unavailable'));
  });
}

const idOf = (user: string, model: string): string => `${user}|${model}`;

export async function saveRecord(record: KeyRecord): Promise<void> {
  const d = await db();
  await new Promise<void>((resolve, reject) => {
    const tx = d.transaction('keys', 'readwrite');
    tx.objectStore('keys').put(record, idOf(record.user, record.model));
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB write failed'));
  });
  d.close();
}

export async function loadRecord(user: string, model: string): Promise<KeyRecord | undefined> {
  const d = await db();
  const out = await new Promise<KeyRecord | undefined>((resolve, reject) => {
    const req = d.transaction('keys', 'readonly').objectStore('keys').get(idOf(user, model));
    req.onsuccess = () => resolve(req.result as KeyRecord | undefined);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB read failed'));
  });
  d.close();
  return out;
}
