/**
 * cipherml/gateway — the trusted side of the encrypted training service: keys (kept locally,
 * 0600), encryption of model and data, the fit job with refreshes, decryption, prediction.
 *
 * @example
 * ```ts
 * import { Gateway } from 'cipherml/gateway';
 * const gw = new Gateway({ service: 'http://127.0.0.1:8080', token, model: 'lr/1', keyDir: 'keys' });
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { Gateway, gatewayFitFiles, gatewayPredictFiles, parseNumericCsv, toFeatureLabelCsv, validateModelJson } from './gateway.ts';
export type { FitFigures, GatewayOptions, ModelJson } from './gateway.ts';
export { ServiceClient } from './client.ts';
export { startGatewayServer } from './http.ts';
export type { GatewayServerOptions, RunningGatewayServer } from './http.ts';
export { openSecret, sealSecret } from './secret-box.ts';
export { gatewayDeploy, gatewayDeployFiles, gatewayInfer, gatewayInferFiles } from './inference.ts';
export type { DeployReply, InferenceGatewayOptions, InferReply } from './inference.ts';
export type { SecretBinding } from './secret-box.ts';
