import { BLOB_KINDS } from '../../src/service/storage/index.ts';
import type { Storage } from '../../src/service/storage/index.ts';

/**
 * Everything later requests can observe of the service's stored state, by name (ids and
 * timestamps are random): models and owners, registrations, profiles, blob hashes, usage, tokens.
 */
export async function snapshot(storage: Storage, users: readonly string[]): Promise<unknown> {
  const people = new Map<string, string>();
  for (const name of users) {
    const u = await storage.getUser(name);
    if (u !== undefined) people.set(u.id, `${name}:${u.role}`);
  }
  const models = await storage.listModels();
  const out: Record<string, unknown> = { models: models.map((m) => `${m.name}/${m.version}@${people.get(m.ownerId) ?? '?'}`), tokens: (await storage.listTokens()).map((t) => `${t.id}:${t.user}:${t.status}`) };
  for (const m of models) {
    for (const [id, name] of people) {
      const key = `${m.name}/${m.version}:${name}`;
      const blobs: Record<string, string> = {};
      for (const k of BLOB_KINDS) {
        const info = await storage.blobInfo(id, m.id, k);
        if (info !== undefined) blobs[k] = info.sha256;
      }
      out[key] = { registered: await storage.isRegistered(id, m.id), profile: (await storage.getProfile(id, m.id)) ?? null, blobs, usage: await storage.getUsage(id, m.id), jobs: (await storage.listJobs({ userId: id, modelId: m.id })).length };
    }
  }
  return out;
}
