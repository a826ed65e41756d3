import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { loadRoster } from '../core/identity.ts';
import { parseThresholdLabel } from '../paillier/threshold.ts';
import { dealThresholdKey } from '../paillier/threshold-dealer.ts';
import { readThresholdKeyShareFile, readThresholdPublicKeyFile, writeThresholdKeyFiles } from '../paillier/threshold-serialize.ts';
import { ThresholdKeyHolder } from '../fl/threshold-holder.ts';
import { INSECURE_PLAINTEXT_LABEL, startRpcServer } from '../fl/transport.ts';
import { intOption } from './options.ts';

/**
 * `cipherml paillier threshold-keygen` (the trusted dealer) and `cipherml key-holder` (one
 * threshold key holder) — key-holder "threshold", docs/paillier.md.
 */

function printer(json: boolean | undefined): (line: string, obj: object) => void {
  return (line, obj) => {
    if (json === true) process.stdout.write(`${JSON.stringify(obj)}\n`);
    else process.stderr.write(`${line}\n`);
  };
}

/** Registers both commands (`paillier threshold-keygen` under the existing `paillier` command). */
export function registerThresholdCommands(program: Command): void {
  registerThresholdKeygenCommand(program);
  registerKeyHolderCommand(program);
}

/** Registers `paillier threshold-keygen` under the `paillier` command (made when absent). */
export function registerThresholdKeygenCommand(program: Command): void {
  const paillier = program.commands.find((c) => c.name() === 'paillier') ?? program.command('paillier');
  paillier
    .command('threshold-keygen')
    .description('trusted dealer: make a threshold Paillier key from safe primes and write DIR/threshold.pub and one DIR/holder-<i>.share (0600) per key holder; the dealer forgets the factors')
    .requiredOption('--holders <L>', 'number of key holders', intOption('--holders'))
    .requiredOption('--threshold <k>', 'key holders needed to decrypt (2 ≤ k ≤ L)', intOption('--threshold'))
    .requiredOption('--out-dir <dir>', 'folder for threshold.pub and the share files (existing files are never overwritten)')
    .option('--bits <bits>', 'modulus size (2048, 3072, 4096; 1024 is insecure, for tests)', intOption('--bits'), 2048)
    .option('--json', 'print one JSON object')
    .action(async (o: { holders: number; threshold: number; outDir: string; bits: number; json?: boolean }) => {
      parseThresholdLabel(`${o.threshold}-of-${o.holders}`, '--threshold');
      if (![1024, 2048, 3072, 4096].includes(o.bits)) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `expected 2048, 3072 or 4096 (1024 for tests), got ${o.bits}`, { param: '--bits' });
      const t0 = performance.now();
      process.stderr.write(`dealer: generating two ${o.bits / 2}-bit safe primes (this takes seconds to a minute)…\n`);
      const tick = setInterval(() => process.stderr.write(`dealer: still searching for safe primes (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`), 10_000);
      let dealt;
      try {
        dealt = await dealThresholdKey({ bits: o.bits, holders: o.holders, threshold: o.threshold });
      } finally {
        clearInterval(tick);
      }
      const paths = await writeThresholdKeyFiles(o.outDir, dealt);
      const pk = dealt.publicKey;
      const obj = { ...paths, fingerprint: pk.fingerprint, threshold: pk.threshold, holders: pk.holders, bits: pk.paillier.bits, ms: Math.round(performance.now() - t0) };
      if (o.json === true) process.stdout.write(`${JSON.stringify(obj)}\n`);
      else {
        process.stdout.write(
          [
            `dealt a ${pk.label} threshold Paillier key (${pk.paillier.bits}-bit n) in ${(obj.ms / 1000).toFixed(1)} s`,
            `  public key: ${paths.publicKeyPath}`,
            ...paths.sharePaths.map((p, i) => `  holder ${i + 1}: ${p} (secret, 0600): give it to key holder ${i + 1} only`),
            `  fingerprint to pin (threshold-fingerprint): ${pk.fingerprint}`,
            '  the dealer kept nothing; delete the share files here once each holder has its own',
          ].join('\n') + '\n',
        );
      }
    });
}

/** Registers `key-holder`. */
export function registerKeyHolderCommand(program: Command): void {
  program
    .command('key-holder')
    .description('threshold key holder: keeps one share; answers the server with decryption shares of the product of at least --min-contributions signed contributions of roster workers, one aggregate per round')
    .requiredOption('--share <file>', 'this holder\'s share file (holder-<i>.share, mode 0600)')
    .requiredOption('--roster <file>', 'JSON array of the workers\' public identities (*.pub) whose signed updates count')
    .requiredOption('--min-contributions <n>', 'fewest distinct signed contributions per aggregate (the run\'s min-fit-clients, ≥ 2)', intOption('--min-contributions'))
    .option('--address <host:port>', 'listen address', '127.0.0.1:9101')
    .option('--threshold-fingerprint <hex>', 'refuse to start unless the share belongs to this threshold key')
    .option('--threshold-public-key <file>', 'refuse to start unless the share belongs to this threshold.pub')
    .option('--max-message-bytes <n>', 'largest request accepted', intOption('--max-message-bytes'), 64 << 20)
    .option('--tls-cert <file>', 'PEM certificate (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key')
    .option('--tls-ca <file>', 'CA that verifies the server\'s client certificate (mutual TLS: only a server with a certificate from this CA is answered)')
    .option('--insecure-plaintext', 'allow plaintext on a non-loopback address (every progress line says so)')
    .option('--json', 'print one JSON object per event on stdout')
    .action(async (o: { share: string; roster: string; minContributions: number; address: string; thresholdFingerprint?: string; thresholdPublicKey?: string; maxMessageBytes: number; tlsCert?: string; tlsKey?: string; tlsCa?: string; insecurePlaintext?: boolean; json?: boolean }) => {
      const print = printer(o.json);
      const expected = o.thresholdPublicKey === undefined ? undefined : await readThresholdPublicKeyFile(o.thresholdPublicKey, o.thresholdFingerprint === undefined ? {} : { pin: o.thresholdFingerprint }, '--threshold-public-key');
      const share = await readThresholdKeyShareFile(o.share, expected === undefined ? {} : { expected }, '--share');
      if (o.thresholdFingerprint !== undefined && o.thresholdFingerprint.toLowerCase() !== share.publicKey.fingerprint) {
        throw new CipherMLError('CIPHERML_E_KEY_MISMATCH', `${o.share} is a share of threshold key ${share.publicKey.fingerprint}, not of the pinned ${o.thresholdFingerprint}`, { param: '--threshold-fingerprint' });
      }
      const roster = await loadRoster(o.roster, '--roster');
      const holder = new ThresholdKeyHolder({
        share,
        roster,
        minContributions: o.minContributions,
        onEvent: (e) => print(`key holder ${share.id}: round ${e.round} ${e.type}: ${e.detail}`, { holder: share.id, event: e.type, round: e.round, detail: e.detail }),
      });
      if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', 'a TLS certificate and its private key are given together', { param: o.tlsCert === undefined ? '--tls-cert' : '--tls-key' });
      if (o.tlsCa !== undefined && o.tlsCert === undefined) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', 'mutual TLS (--tls-ca) needs this holder\'s own --tls-cert and --tls-key', { param: '--tls-cert' });
      const tls = o.tlsCert === undefined || o.tlsKey === undefined ? {} : { tls: { cert: o.tlsCert, key: o.tlsKey, ...(o.tlsCa === undefined ? {} : { ca: o.tlsCa }) } };
      const srv = await startRpcServer({ address: o.address, routes: (r) => holder.routes(r), maxMessageBytes: o.maxMessageBytes, insecurePlaintext: o.insecurePlaintext === true, ...tls });
      const transport = o.tlsCert === undefined ? 'plaintext' : o.tlsCa === undefined ? 'TLS' : 'mutual TLS';
      const label = transport === 'plaintext' && o.insecurePlaintext === true ? `${INSECURE_PLAINTEXT_LABEL} ` : '';
      print(`${label}key holder ${share.id} of ${share.publicKey.label} key ${share.publicKey.fingerprint.slice(0, 16)}…: listening on ${srv.address} (${transport}${transport === 'plaintext' ? '; loopback only unless --insecure-plaintext' : ''}); decrypts only products of ≥ ${o.minContributions} signed contributions of ${roster.parties.length} roster parties`, {
        holder: share.id,
        event: 'listening',
        address: srv.address,
        transport,
        fingerprint: share.publicKey.fingerprint,
      });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await srv.close();
    });
}
