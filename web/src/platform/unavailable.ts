/**
 * `node:fs/promises`, `node:fs`, `node:events` and `node:path` on the browser path: the shared
 * protocol code imports them for its file helpers (key files, atomic writes), which the browser
 * never calls. Each export throws, so a call that slipped into the browser path fails loudly.
 * `readFile` of a URL is the one exception: src/ckks/seal.ts reads the SEAL wasm with it, and in
 * the browser that is a same-origin fetch of the built asset.
 */
function unavailable(name: string): () => never {
  return () => {
    throw new Error(`${name} is not available in the browser build`);
  };
}

export async function readFile(path: unknown): Promise<Uint8Array> {
  if (!(path instanceof URL)) throw new Error('readFile is only available for URLs in the browser build');
  const r = await fetch(path);
  if (!r.ok) throw new Error(`GET ${path.pathname} answered ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
export const stat = unavailable('fs.stat');
export const unlink = unavailable('fs.unlink');
export const access = unavailable('fs.access');
export const chmod = unavailable('fs.chmod');
export const link = unavailable('fs.link');
export const open = unavailable('fs.open');
export const rename = unavailable('fs.rename');
export const mkdir = unavailable('fs.mkdir');
export const writeFile = unavailable('fs.writeFile');
export const once = unavailable('events.once');
export const dirname = unavailable('path.dirname');
export const basename = unavailable('path.basename');
export const join = unavailable('path.join');
export default {};
