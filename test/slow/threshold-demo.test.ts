import { spawn } from 'node:child_process';
import { createClient } from '@connectrpc/connect';
import { ThresholdKeyHolderService } from '../../src/fl/gen/cipherml/fl/v1/threshold_pb.ts';
import { PROTOCOL_VERSION } from '../../src/fl/protocol.ts';
import { createRpcTransport } from '../../src/fl/transport.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, homoLrDemo } from './homo-lr-demo.ts';

// `cipherml demo homo-lr --key-holder threshold`: a one-shot dealer process, three key-holder
// processes, a server and two workers, all separate processes over gRPC with mutual TLS (the
// demo's throwaway local test CA); the model must match plain FedAvg's accuracy within 0.01.
// Afterwards a key holder started from the demo's files answers only a client with a certificate
// from that CA.


const demo = homoLrDemo;

describe('demo homo-lr --key-holder threshold', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cipherml-threshold-demo-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('runs end to end with 2-of-3 key holders, accuracy within 0.01 of plain FedAvg', async () => {
    const plain = await demo(['--strategy', 'plain', '--rounds', '10', '--run-dir', join(dir, 'plain')]);
    const th = await demo(['--key-holder', 'threshold', '--threshold', '2-of-3', '--key-bits', '1024', '--rounds', '10', '--run-dir', join(dir, 'threshold')]);
    expect(plain.code).toBe(0);
    expect(th.code, th.stderr.slice(-2000)).toBe(0);
    expect(th.last).toMatchObject({ strategy: 'paillier', keyHolder: 'threshold', rounds: 10 });
    expect(Math.abs((th.last['accuracy'] as number) - (plain.last['accuracy'] as number))).toBeLessThanOrEqual(0.01);
    expect(th.stderr).toMatch(/\[holder 2\] decrypted round 10: decryption shares of the product of 2 signed contributions/);
    expect(th.last['transport']).toMatch(/^mutual TLS \(LOCAL TEST CA/);
    expect(th.stderr).toMatch(/\[tls\] mutual TLS between all 6 parties/);
    for (const k of [1, 2, 3]) expect(th.stderr).toMatch(new RegExp(`\\[holder ${k}\\] listening on 127\\.0\\.0\\.1:\\d+ \\(mutual TLS\\)`));
    const history = JSON.parse(await readFile(join(dir, 'threshold', 'history.json'), 'utf8')) as { rounds: { secagg?: { threshold?: { used: number[]; rejected: number[] } } }[] };
    // The server records each round's stage report under `secagg`.
    expect(history.rounds[9]!.secagg?.threshold).toMatchObject({ rejected: [] });

    // Mutual TLS is enforced: a key holder started from the demo's files refuses a plaintext
    // client and a TLS client without a certificate, and answers one with a certificate from the CA.
    const t = (f: string) => join(dir, 'threshold', 'tls', f); // the demo's run folder is <dir>/threshold
    const holder = spawn(process.execPath, [bin, 'key-holder', '--share', join(dir, 'threshold', 'threshold', 'holder-1.share'), '--roster', join(dir, 'threshold', 'identities', 'roster.json'), '--min-contributions', '2', '--address', '127.0.0.1:0', '--tls-cert', t('holder-1.pem'), '--tls-key', t('holder-1.key'), '--tls-ca', t('ca.pem'), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let out = '';
        holder.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /"address":"([^"]+)"/.exec(out);
          if (m !== null) resolve(m[1]!);
        });
        holder.once('exit', (code) => reject(new Error(`key holder exited with ${code}: ${out}`)));
      });
      const info = (tls: Parameters<typeof createRpcTransport>[0]['tls'] | undefined) =>
        createClient(ThresholdKeyHolderService, createRpcTransport({ address, maxMessageBytes: 1 << 20, ...(tls === undefined ? {} : { tls }) }))
          .holderInfo({ protocolVersion: PROTOCOL_VERSION })
          .then((r) => `holder ${r.holderId}`, () => 'refused');
      expect(await info(undefined)).toBe('refused');
      expect(await info({ ca: t('ca.pem') })).toBe('refused');
      expect(await info({ ca: t('ca.pem'), cert: t('server.pem'), key: t('server.key') })).toBe('holder 1');
    } finally {
      holder.kill('SIGTERM');
    }
  });
});
