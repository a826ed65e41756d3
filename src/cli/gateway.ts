import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { portOption } from './options.ts';

/** Reads `--tls-ca` (PEM); a missing file is a typed error naming the flag. */
async function tlsCa(path: string | undefined): Promise<Uint8Array | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path);
  } catch (e) {
    throw new CipherMLError('CIPHERML_E_IO', `cannot read the CA certificate ${path}: ${(e as Error).message}`, { param: '--tls-ca', cause: e });
  }
}
const TLS_CA_HELP = 'PEM CA certificate the https:// service certificate must chain to (a private CA; default: the system roots)';

const defaultKeyDir = (): string => process.env['CIPHERML_GATEWAY_KEYS'] ?? join(homedir(), '.cipherml', 'gateway');

/** `cipherml gateway …` — the trusted side: keys, encryption, fit, predict. */
export function registerGatewayCommands(program: Command): void {
  const gw = program.command('gateway').description('trusted gateway of the encrypted training service (holds the secret key)');
  gw.command('fit')
    .description('generate keys, encrypt model and data, train on the service, decrypt the trained model; resumes the open job this --key-dir started instead of making new keys')
    .requiredOption('--service <url>', 'service base URL, e.g. http://127.0.0.1:8080')
    .requiredOption('--token <token>', 'bearer token (cipherml serve token create)')
    .requiredOption('--model <name/version>', 'deployed model')
    .requiredOption('--model-file <path>', 'initial model.json ({"coef_": [[…]], "intercept_": [b]})')
    .option('--requirements <path>', 'requirements.json (e.g. {"batchSize": 1024})')
    .requiredOption('--hyper-params <path>', 'hyper_params.json (numberOfEpochs, learningRate, numberOfFeatures, logisticRegressionActivation)')
    .requiredOption('--features <path>', 'features CSV with a header')
    .requiredOption('--labels <path>', 'labels CSV with a header (one column, 0/1)')
    .requiredOption('--out <path>', 'trained.json (same shape as model.json)')
    .option('--key-dir <dir>', 'local key store (secret keys 0600)', defaultKeyDir())
    .option('--overwrite', 'replace an existing --out file')
    .option('--passphrase-env <VAR>', 'also store the secret key on the service, sealed under the passphrase in this environment variable')
    .option('--json', 'print one JSON object with the job figures')
    .option('--tls-ca <pem>', TLS_CA_HELP)
    .action(async (o: { service: string; token: string; model: string; modelFile: string; requirements?: string; hyperParams: string; features: string; labels: string; out: string; keyDir: string; overwrite?: boolean; passphraseEnv?: string; json?: boolean; tlsCa?: string }) => {
      const { gatewayFitFiles } = await import('../gateway/index.ts');
      const passphrase = o.passphraseEnv === undefined ? undefined : process.env[o.passphraseEnv];
      if (o.passphraseEnv !== undefined && (passphrase === undefined || passphrase === '')) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `environment variable ${o.passphraseEnv} is not set`, { param: '--passphrase-env' });
      const figures = await gatewayFitFiles({ ...o, tlsCa: await tlsCa(o.tlsCa), passphrase, onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(o.json === true ? `${JSON.stringify(figures)}\n` : `trained ${figures.epochs} epochs on ${figures.rows} encrypted rows in ${(figures.totalMs / 1000).toFixed(1)} s (service ${(figures.trainMs / 1000).toFixed(1)} s, ${figures.refreshes} refreshes) → ${o.out}\n`);
    });
  gw.command('predict')
    .description('encrypt features, predict on the service, decrypt; writes a CSV with header "probability"')
    .requiredOption('--service <url>', 'service base URL')
    .requiredOption('--token <token>', 'bearer token')
    .requiredOption('--model <name/version>', 'deployed model (fit first)')
    .requiredOption('--features <path>', 'features CSV with a header')
    .requiredOption('--out <path>', 'predictions.csv')
    .option('--key-dir <dir>', 'local key store', defaultKeyDir())
    .option('--overwrite', 'replace an existing --out file')
    .option('--json', 'print {"rows", "out"}')
    .option('--tls-ca <pem>', TLS_CA_HELP)
    .action(async (o: { service: string; token: string; model: string; features: string; out: string; keyDir: string; overwrite?: boolean; json?: boolean; tlsCa?: string }) => {
      const { gatewayPredictFiles } = await import('../gateway/index.ts');
      const r = await gatewayPredictFiles({ ...o, tlsCa: await tlsCa(o.tlsCa) });
      process.stdout.write(o.json === true ? `${JSON.stringify({ rows: r.rows, out: o.out })}\n` : `${r.rows} predictions → ${o.out}\n`);
    });
  gw.command('deploy')
    .description('owner: deploy an ONNX model for encrypted inference; the service calibrates it (he keyparams) and publishes the calibrated model and keyparams at the model URL')
    .requiredOption('--service <url>', 'service base URL')
    .requiredOption('--token <token>', 'bearer token of the owner')
    .requiredOption('--model <name/version>', 'model name and version to deploy')
    .requiredOption('--onnx <path>', 'the plaintext ONNX model')
    .requiredOption('--calibration <path>', 'calibration inputs (.npz/.zip of .npy, or .npy), as for he keyparams')
    .option('--tls-ca <pem>', TLS_CA_HELP)
    .option('--json', 'print the deploy answer as JSON')
    .action(async (o: { service: string; token: string; model: string; onnx: string; calibration: string; tlsCa?: string; json?: boolean }) => {
      const { gatewayDeployFiles } = await import('../gateway/index.ts');
      const r = await gatewayDeployFiles({ service: o.service, token: o.token, model: o.model, onnxFile: o.onnx, calibrationFile: o.calibration, tlsCa: await tlsCa(o.tlsCa), onProgress: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(o.json === true ? `${JSON.stringify(r)}\n` : `${o.model} deployed for encrypted inference at ${r.modelUrl} (depth ${r.depth}, N = ${r.polyModulusDegree}, packing ${r.packing}; keyparams ${r.keyParamsUrl})\n`);
    });
  gw.command('infer')
    .description('user: encrypted inference on a deployed model: makes or reuses keys, uploads the evaluation keys once, encrypts, posts, waits, decrypts')
    .requiredOption('--service <url>', 'service base URL')
    .requiredOption('--token <token>', 'bearer token')
    .requiredOption('--model <name/version>', 'model deployed for inference')
    .requiredOption('-i, --input <path>', 'input .npy (a leading batch axis is a batch)')
    .requiredOption('-o, --out <path>', 'decrypted output .npy (float32)')
    .option('--key-dir <dir>', 'local key store (secret keys 0600)', defaultKeyDir())
    .option('--overwrite', 'replace an existing --out file')
    .option('--tls-ca <pem>', TLS_CA_HELP)
    .option('--json', 'print one JSON object with the job figures')
    .action(async (o: { service: string; token: string; model: string; input: string; out: string; keyDir: string; overwrite?: boolean; tlsCa?: string; json?: boolean }) => {
      const { gatewayInferFiles } = await import('../gateway/index.ts');
      const r = await gatewayInferFiles({ service: o.service, token: o.token, model: o.model, keyDir: o.keyDir, inputFile: o.input, outFile: o.out, overwrite: o.overwrite === true, tlsCa: await tlsCa(o.tlsCa), onProgress: (line) => process.stderr.write(`${line}\n`) });
      if (r.rangeWarning !== undefined) process.stderr.write(`warning: ${r.rangeWarning.count} decrypted value(s) far outside the calibrated output range [${r.rangeWarning.calibrated.join(', ')}]\n`);
      process.stdout.write(o.json === true ? `${JSON.stringify({ out: o.out, ...r })}\n` : `job ${r.jobId}: output [${r.dims.join(', ')}] decrypted → ${o.out} (${r.packing} packing; keys ${r.keysGenerated ? 'made' : 'reused'}, ${r.keysUploaded ? 'uploaded' : 'already on the service'})\n`);
    });
  gw.command('cancel')
    .description("cancel this user's open fit job for the model (or --job ID, also an inference job); the service frees the uploads for a new fit")
    .requiredOption('--service <url>', 'service base URL')
    .requiredOption('--token <token>', 'bearer token')
    .requiredOption('--model <name/version>', 'deployed model')
    .option('--job <id>', 'job id (default: the open job)')
    .option('--key-dir <dir>', 'local key store', defaultKeyDir())
    .option('--tls-ca <pem>', TLS_CA_HELP)
    .option('--json', 'print {"jobId", "status"}')
    .action(async (o: { service: string; token: string; model: string; job?: string; keyDir: string; tlsCa?: string; json?: boolean }) => {
      const { Gateway } = await import('../gateway/index.ts');
      const r = await new Gateway({ ...o, tlsCa: await tlsCa(o.tlsCa) }).cancel(o.job);
      process.stdout.write(o.json === true ? `${JSON.stringify(r)}\n` : `job ${r.jobId} ${r.status}\n`);
    });
  gw.command('serve')
    .description('local HTTP server of the gateway (loopback only, local bearer token, Host checked): /keys/generate/model, /encrypt/data/fit, /encrypt/data/predict')
    .requiredOption('--service <url>', 'service base URL')
    .requiredOption('--token <token>', 'bearer token')
    .option('--port <port>', 'TCP port (0 = any free port)', portOption('--port'), 8090)
    .option('--host <host>', 'loopback address to listen on (127.0.0.1, ::1 or localhost)', '127.0.0.1')
    .option('--key-dir <dir>', 'local key store', defaultKeyDir())
    .option('--local-token-env <VAR>', 'take the local bearer token from this environment variable (default: a random one, printed once)')
    .action(async (o: { service: string; token: string; port: number; host: string; keyDir: string; localTokenEnv?: string }) => {
      const localToken = o.localTokenEnv === undefined ? undefined : process.env[o.localTokenEnv];
      if (o.localTokenEnv !== undefined && (localToken === undefined || localToken === '')) throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `environment variable ${o.localTokenEnv} is not set`, { param: '--local-token-env' });
      const { startGatewayServer } = await import('../gateway/index.ts');
      const srv = await startGatewayServer({ service: o.service, token: o.token, port: o.port, host: o.host, keyDir: o.keyDir, ...(localToken === undefined ? {} : { localToken }) });
      process.stdout.write(`cipherml gateway listening on ${srv.url}\n${localToken === undefined ? `local token (send as Authorization: Bearer …):\n${srv.localToken}\n` : ''}`);
      await new Promise<void>((resolve) => {
        const stop = (): void => void srv.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
