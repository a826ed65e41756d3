import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultTrustAnchors } from './anchors.ts';
import { parsePemChain } from './x509.ts';

const F = join(import.meta.dirname, '../../test/attest/fixtures');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const pem = (p: string, i = 0): Uint8Array => parsePemChain(readFileSync(join(F, p)), p)[i]!.raw;

describe('pinned vendor roots', () => {
  it('are byte-identical to the roots the source projects ship, with the documented fingerprints', () => {
    const a = defaultTrustAnchors();
    expect(sha(a.intel[0]!.raw)).toBe('44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3');
    expect(Buffer.from(a.intel[0]!.raw)).toEqual(readFileSync(join(F, 'sgx-dcap/dcap-qvl/TrustedRootCA.der')));
    expect(sha(a.nitro[0]!.raw)).toBe('641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b');
    expect(a.nitro[0]!.raw).toEqual(pem('nitro/blindai/aws_nitro_enclaves_rootca.pem'));
    for (const [p, dir] of [['Milan', 'milan'], ['Genoa', 'genoa']] as const) {
      const k = a.amd[p]!;
      expect(k.ark.raw).toEqual(pem(`sev-snp/roots/${dir}/ark.pem`));
      expect(k.ask.raw).toEqual(pem(`sev-snp/roots/${dir}/ask.pem`));
      expect(k.ask.raw).toEqual(pem(`sev-snp/roots/ask_ark_${dir}.pem`, 0));
      expect(k.ark.raw).toEqual(pem(`sev-snp/roots/ask_ark_${dir}.pem`, 1));
      expect(k.asvk.raw).toEqual(pem(`sev-snp/roots/ask_ark_${dir}_vlek.pem`, 0));
      // AMD's keys sign with RSASSA-PSS; the ARK is self-signed and signs the ASK and ASVK.
      expect(k.ark.verify(k.ark.publicKey) && k.ask.verify(k.ark.publicKey) && k.asvk.verify(k.ark.publicKey)).toBe(true);
    }
  });
});
