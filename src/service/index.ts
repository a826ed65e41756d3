/**
 * cipherml/service — the untrusted encrypted training service (REST, storage, jobs, CKKS
 * logistic regression).
 *
 * @example
 * ```ts
 * import { startService } from 'cipherml/service';
 * const svc = await startService({ dataDir: 'data', port: 8080 });
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { startService } from './server.ts';
export type { RunningService, ServiceOptions } from './server.ts';
export { OPENAPI_DOCUMENT } from './openapi.ts';
export { runFitJob, runFitJobOnThread } from './jobs.ts';
export type { JobStorageRef } from './jobs.ts';
export { openStorage } from './storage/index.ts';
export type { Storage, StorageOptions, Role, TokenInfo } from './storage/index.ts';
export { EPOCH_DEPTH, TRAIN_CKKS_PARAMETERS, decryptScores, decryptWeights, encryptPredictData, encryptTrainingData, encryptWeights, planPacking, predictEncrypted, trainEncrypted, trainingGaloisSteps, validateHyperParams } from '../ml/encrypted-lr.ts';
export type { TrainHyperParams, TrainHooks, TrainResult, PackingPlan } from '../ml/encrypted-lr.ts';
export { FIT_QUEUE, openFitQueue, redisConnection, startQueueWorker } from './queue.ts';
