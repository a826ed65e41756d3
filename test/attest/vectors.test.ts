import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyReport } from '../../src/attest/verify.ts';
import { fixture, VECTORS, vector } from './vectors.ts';

/**
 * Every real document of the fixtures verifies at its recorded time and yields the fields its
 * source project's own tests state (EXPECTED.json, expected_from_source_tests).
 */

function verify(name: string) {
  const v = vector(name);
  return verifyReport(v.evidence(fixture(v.file)), v.policy, { at: new Date(v.at) });
}

describe('real attestation documents verify at their recorded time', () => {
  for (const v of VECTORS) {
    it(v.name, () => {
      const r = verifyReport(v.evidence(fixture(v.file)), v.policy, { at: new Date(v.at) });
      expect(r.verified).toBe(true);
      expect(r.kind).toBe(v.kind);
      expect(r.checks).toContain('body-signature');
      expect(r.checks).toContain('pinned-root');
      expect(r.simulation).toBe(false);
    });
  }

  it('SGX dcap-qvl: header, report body and TCB status as dcap-qvl asserts', () => {
    const r = verify('sgx dcap-qvl');
    expect(r.fields).toMatchObject({ version: 3, qe_vendor_id: '939a7233f79c4ca9940a0db3957f0607', header_user_data: '3987622ee6968a54977c8626ef47123500000000', tee_type: 0, attributes: '0500000000000000e700000000000000', mr_signer: '815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6', isv_prod_id: 0, misc_select: 0 });
    expect(r.securityVersions).toMatchObject({ qe_svn: 10, pce_svn: 15, isv_svn: 0, cpu_svn: '0b0b1a18ffff04000000000000000000' });
    expect(r.measurement).toBe('33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb');
    expect(Buffer.from(r.reportData, 'hex').toString('latin1').replace(/\0+$/, '')).toBe('Hello, world!');
    expect(r.tcbStatus).toBe('ConfigurationAndSWHardeningNeeded');
    expect(r.advisoryIds).toEqual(['INTEL-SA-00289', 'INTEL-SA-00615']);
    expect(r.debug).toBe(false);
    expect(r.checks).toEqual(expect.arrayContaining(['tcb-info-signature', 'qe-identity-match', 'crl-signature', 'revocation', 'tcb-status']));
  });

  it('SGX mc-attestation: MRENCLAVE, QE identity and TCB SWHardeningNeeded as mc-attestation asserts', () => {
    const r = verify('sgx mc-attestation');
    expect(r.measurement).toBe('840d61b0585dc8b4dc90f53af293c760fda06bee75978a6a86263ffb296423f4');
    expect(r.fields).toMatchObject({ qe_mr_signer: '8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff', qe_isv_prod_id: 1, qe_tcb_status: 'UpToDate', fmspc: '00906ed50000' });
    expect(r.tcbStatus).toBe('SWHardeningNeeded');
    expect(r.advisoryIds).toEqual(['INTEL-SA-00334', 'INTEL-SA-00615']);
  });

  it('SGX mc-sgx-dcap-types: PCK extensions as mc-sgx-dcap-types asserts', () => {
    const r = verify('sgx mc-sgx-dcap-types');
    expect(r.fields['fmspc']).toBe('00906ed50000');
    expect(r.securityVersions).toMatchObject({ pck_pcesvn: 11, pck_sgx_tcb_components: '17,17,2,4,1,128,6,0,0,0,0,0,0,0,0,0' });
    expect(r.tcbStatus).toBe('not-evaluated');
  });

  it('TDX go-tdx-guest v4: TD report fields as go-tdx-guest asserts; the 39 trailing bytes are tolerated', () => {
    const r = verify('tdx go-tdx-guest v4');
    expect(r.measurement).toBe('6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb');
    expect(r.reportData).toBe('6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113');
    expect(r.securityVersions).toMatchObject({ tee_tcb_svn: '03000400000000000000000000000000', qe_svn: 0, pce_svn: 0 });
    expect(r.fields).toMatchObject({
      mr_seam: '2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9a89b4869a9fab60fbe9d0c5a5363c656', td_attributes: '0000004000000000', xfam: 'e71a060000000000',
      rtmr0: '2927da70461cd63266f43230cc1849c03ef25ebe490062a801d8fcc80af42976823adf08f833c1e50b51779c6593f32a', rtmr1: '2c700b8ba9b85783f8be9fb9443647bdc0bb3c50747f06297cc6538c25a5f589c4b56d035c59107c6bc5800db2cacb61',
      rtmr2: '8652f0caaba7e215ea442dc36a4499d8fec3362f3a0b2ca151cbe4b3e6466fe59c7368b3c2287fc7c3bf5c924eb4424e', rtmr3: '0'.repeat(96), mr_signer_seam: '0'.repeat(96), mr_config_id: '0'.repeat(96),
      fmspc: '50806f000000', pce_id: '0000', qe_mr_signer: 'dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5', qe_isv_prod_id: 2, trailing_bytes: 39,
    });
  });

  it('TDX go-tdx-guest v5: TD 1.5 body', () => {
    const r = verify('tdx go-tdx-guest v5');
    expect(r.fields).toMatchObject({ version: 5, body_type: 3, fmspc: '90c06f000000' });
  });

  it('TDX dcap-qvl: every field of dcap-qvl\'s snapshot, TCB UpToDate, 70 trailing zero bytes tolerated', () => {
    const r = verify('tdx dcap-qvl');
    expect(r.measurement).toBe('91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7');
    expect(r.reportData).toBe('9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20');
    expect(r.fields).toMatchObject({
      version: 4, tee_type: 129, header_user_data: '889b7d6ff9df2405b240a830e73faf3d00000000', mr_seam: '5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207b00c1',
      td_attributes: '0000001000000000', xfam: 'e702060000000000', rtmr0: '44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0',
      rtmr1: '0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378', rtmr2: 'd833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132',
      trailing_bytes: 70,
    });
    expect(r.securityVersions).toMatchObject({ tee_tcb_svn: '06010300000000000000000000000000', qe_svn: 0, pce_svn: 0 });
    expect(r.tcbStatus).toBe('UpToDate');
    expect(r.advisoryIds).toEqual([]);
  });

  it('SNP go-sev-guest: report fields as go-sev-guest asserts (Milan, debug policy)', () => {
    const r = verify('snp go-sev-guest');
    expect(r.reportData).toBe('0102030405' + '0'.repeat(118));
    expect(r.measurement).toBe('b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01');
    expect(r.fields).toMatchObject({
      host_data: '0'.repeat(64), family_id: '0'.repeat(32), image_id: '0'.repeat(32), report_id: '8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a', vmpl: 0, platform_info: '0x1', product: 'Milan',
      chip_id: '3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d',
    });
    expect(r.securityVersions['reported_tcb']).toBe('bl=2 tee=0 snp=5 ucode=68');
    expect(r.debug).toBe(true);
  });

  it('SNP trustee VCEK, trustee VLEK (cloud-provider key via ASVK), Oak Genoa', () => {
    const t = verify('snp trustee vcek');
    expect([t.measurement.length, t.reportData.length, String(t.fields['host_data']).length, String(t.fields['chip_id']).length]).toEqual([96, 128, 64, 128]);
    expect(t.fields).toMatchObject({ product: 'Milan', signing_key: 'vcek' });
    expect(verify('snp trustee vlek').fields).toMatchObject({ product: 'Milan', signing_key: 'vlek', vmpl: 1 });
    const o = verify('snp oak genoa');
    expect(o.measurement).toBe('c57729018b0a6fb90dc17bb138b0aa35e4401004283ff4a2c24d3739ff3750f52384370e77b7032862a08c440a9bc4dc');
    expect(o.fields['product']).toBe('Genoa');
    const v = vector('snp oak genoa');
    // Oak's reference values: minimum Genoa TCB boot_loader 10, snp 25, microcode 84.
    expect(verifyReport(v.evidence(fixture(v.file)), { ...v.policy, minTcb: { bootloader: 10, tee: 0, snp: 25, microcode: 84 }, measurements: [o.measurement] }, { at: new Date(v.at) }).checks).toContain('min-tcb');
  });

  it('Nitro: PCRs as evervault asserts; debug detection; blindai user_data; GA user_data binds the TLS key', () => {
    const b = verify('nitro evervault beta');
    expect(b.fields).toMatchObject({
      pcr0: 'f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b', pcr1: 'bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee80b214a414b7607236edf26fcb78654e63f',
      pcr2: 'd8f114da658de5481f8d9ec73907feb553560787522f705c92d7d96beed8e15e2aa611984e098c576832c292e8dc469a', pcr8: '8790eb3cce6c83d07e84b126dc61ca923333d6f66615c4a79157de48c5ab2418bdc60746ea7b7afbff03a1c6210201cb',
      module_id: 'i-020b6af9246d90e92-enc0183d09086c24190', digest: 'SHA384',
    });
    expect(b.debug).toBe(false);
    const bl = verify('nitro blindai');
    expect(bl.debug).toBe(true);
    expect(bl.reportData).toBe('68656c6c6f2c20776f726c6421');
    expect(bl.measurement).toBe('0'.repeat(96));
    const ga = verify('nitro evervault ga');
    const spki = new X509Certificate(fixture('nitro/evervault/ga-valid-certificate.der')).publicKey.export({ type: 'spki', format: 'der' });
    expect(ga.reportData).toBe(spki.toString('hex'));
    expect(verify('nitro evervault beta debug').debug).toBe(true);
  });
});
