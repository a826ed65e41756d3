import { describe, expect, it } from 'vitest';
import { defaultTrustAnchors } from '../../src/attest/anchors.ts';
import { withChecksDisabled, type AttestCheck } from '../../src/attest/fail.ts';
import { verifyReport } from '../../src/attest/verify.ts';
import type { AttestationPolicy } from '../../src/attest/policy.ts';
import { isCipherMLError } from '../../src/core/errors.ts';
import { fixture, vector } from './vectors.ts';

/**
 * The refusal tests can fail: each attack below is refused by the named check, and the same
 * attack is accepted — with the attacker's value in the result — when only that check is disabled
 * (internal test hook). The adversary is whoever delivers the document: the aggregator's operator
 * or a network attacker, who can change any byte and choose the certificates.
 */

interface Attack {
  readonly name: string;
  readonly vector: string;
  readonly check: AttestCheck;
  readonly bytes?: (b: Buffer) => Buffer;
  readonly policy?: Partial<AttestationPolicy>;
  readonly at?: string;
  readonly anchors?: ReturnType<typeof defaultTrustAnchors>;
  /** What the attacker achieved when accepted. */
  readonly effect: (r: ReturnType<typeof verifyReport>) => boolean;
}

const flip = (i: number, x: number) => (b: Buffer): Buffer => {
  const m = Buffer.from(b);
  m[i]! ^= x;
  return m;
};

const a = defaultTrustAnchors();
const ATTACKS: readonly Attack[] = [
  { name: 'operator edits MRTD in a TDX quote', vector: 'tdx dcap-qvl', check: 'body-signature', bytes: flip(48 + 136, 0xff), effect: (r) => r.measurement.startsWith('6e') },
  { name: 'operator edits the SNP MEASUREMENT', vector: 'snp oak genoa', check: 'body-signature', bytes: flip(0x90, 0x01), effect: (r) => r.measurement.startsWith('c4') },
  { name: 'operator edits Nitro PCR0', vector: 'nitro evervault beta', check: 'body-signature', bytes: (b) => flip(b.indexOf(Buffer.from('f4d48b81a460c991', 'hex')), 0x01)(b), effect: (r) => r.measurement.startsWith('f5d4') },
  { name: 'document chained to a root the verifier does not pin', vector: 'nitro evervault beta', check: 'pinned-root', anchors: { ...a, nitro: a.intel }, effect: (r) => r.verified },
  { name: 'a debug enclave', vector: 'nitro blindai', check: 'debug', policy: { allowDebug: false }, effect: (r) => r.debug },
  { name: 'report data for other keys', vector: 'tdx dcap-qvl', check: 'report-data', policy: { reportData: 'aa'.repeat(64) }, effect: (r) => !r.reportData.startsWith('aa') },
  { name: 'a chain that has expired (the real current time)', vector: 'nitro blindai', check: 'certificate-validity', policy: { allowDebug: true }, at: new Date().toISOString(), effect: (r) => r.verified },
  { name: 'a platform TCB with open advisories', vector: 'sgx mc-attestation', check: 'tcb-status', policy: { acceptedTcbStatuses: ['UpToDate'] }, effect: (r) => r.tcbStatus === 'SWHardeningNeeded' },
  { name: 'a VCEK for another TCB than the report states', vector: 'snp trustee vcek', check: 'vek-tcb-match', bytes: flip(384, 0x01), effect: () => true },
];

describe('each defence is what refuses its attack', () => {
  for (const x of ATTACKS) {
    it(x.name, () => {
      const v = vector(x.vector);
      const doc = (x.bytes ?? ((b: Buffer) => b))(fixture(v.file));
      const run = () => verifyReport(v.evidence(doc), { ...v.policy, ...x.policy }, { at: new Date(x.at ?? v.at), ...(x.anchors === undefined ? {} : { anchors: x.anchors }) });
      let refusedBy: unknown;
      try {
        run();
      } catch (e) {
        refusedBy = isCipherMLError(e) ? e.details?.['check'] : e;
      }
      expect(refusedBy).toBe(x.check);
      // vek-tcb-match's attack also breaks the signature (the TCB is signed), so both are disabled there.
      const off: AttestCheck[] = x.check === 'vek-tcb-match' ? [x.check, 'body-signature'] : [x.check];
      const accepted = withChecksDisabled(off, run);
      expect(x.effect(accepted)).toBe(true);
    });
  }
});
