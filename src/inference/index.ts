/**
 * cipherml/inference — encrypted inference of ONNX models with CKKS (after HE-MAN, ICMLT 2023).
 *
 * - {@link parseOnnx} / {@link serializeOnnx}: ONNX ModelProto ⇄ a small graph IR (types generated from the vendored onnx.proto).
 * - {@link runPlain}: the plaintext reference executor (checked against onnxruntime in tests).
 * - {@link runBatch}: the batch plan, one sample per CKKS slot; linear layers are composed
 *   symbolically and cost one level together; {@link batchDepth} gives the levels it needs.
 * - {@link compileSingle} / {@link prepareSingle} / {@link runSingle}: the single plan, one input
 *   in the slots, diagonal matrix-vector products with baby-step/giant-step rotations.
 * - {@link InferencePool}: the batch plan on worker threads ({@link recordBatch}, {@link schedulePool});
 *   {@link EncryptionPool}: the client's encryption on worker threads.
 * - {@link calibrate}: polynomial activations, both plans, CKKS parameters (`he keyparams`).
 * - {@link heKeyParams}, {@link heKeygen}, {@link heEncrypt}, {@link heInference}, {@link heDecrypt}:
 *   the five HE-MAN steps on files; {@link encryptBatch}, {@link encryptSingle}, {@link inferBytes},
 *   {@link decryptOutput} on bytes.
 * - {@link GraphBuilder}: builds per-operator ONNX models for tests and scripts.
 *
 * Supported operators: {@link SUPPORTED_OPERATORS}; anything else is CIPHERML_E_ONNX_UNSUPPORTED_OPERATOR
 * naming the node, raised before any ciphertext is touched.
 *
 * @example
 * ```ts
 * import { parseOnnx, runBatch, batchDepth } from 'cipherml/inference';
 * import { CkksContext, chooseCkksParameters, loadSeal } from 'cipherml/ckks';
 * const graph = parseOnnx(await readFile('model.onnx'));
 * const ctx = await CkksContext.create(chooseCkksParameters(await loadSeal(), { depth: batchDepth(graph) }));
 * const inputs = pixelsBySample[0].map((_, j) => ctx.encryptVector(pixelsBySample.map((s) => s[j])));
 * const scores = runBatch(ctx, graph, inputs).map((v) => ctx.decryptVector(v, pixelsBySample.length));
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { batchCost, batchDepth, recordBatch, runBatch, runBatchInstr } from './batch.ts';
export type { BatchInstr, BatchProgram, RunBatchOptions } from './batch.ts';
export { calibrate } from './calibrate.ts';
export type { ActivationFit, CalibrateOptions, KeyParams, Packing, PlanSummary } from './calibrate.ts';
export { choosePacking, decryptOutput, encryptBatch, encryptSingle, heDecrypt, heEncrypt, heInference, heKeygen, heKeyParams, inferBytes, inferFile, readKeyParams, readModel } from './he.ts';
export type { InferOptions } from './he.ts';
export type { TensorMeta } from './meta.ts';
export { DEFAULT_ARRAY_LIMITS, readArrays, readNpy, readZip, writeNpy, writeZip } from './npy.ts';
export type { ArrayLimits } from './npy.ts';
export { EncryptionPool, InferencePool, schedulePool } from './pool.ts';
export type { InferencePoolOptions, PoolInferOptions, PoolSchedule, ThreadPlan } from './pool.ts';
export { compileSingle, packSingleInput, PreparedSingle, prepareSingle, runSingle } from './single.ts';
export type { SingleMap, SinglePlan, SingleStep } from './single.ts';
export { GraphBuilder } from './builder.ts';
export { assertSupported, execute, PLAIN, runPlain, SUPPORTED_OPERATORS } from './execute.ts';
export type { Algebra, DynTensor, ExecuteOptions } from './execute.ts';
export { DEFAULT_ONNX_LIMITS, parseOnnx, readOnnxFile, serializeOnnx, sizeOf } from './onnx.ts';
export type { AttributeValue, Graph, GraphNode, Tensor } from './onnx.ts';
export { DEPLOY_BUNDLE, MAX_SINGLE_SAMPLES, calibrateBytes, inferenceLimits, inferencePaths, packDeployBundle, unpackDeployBundle } from './service-wire.ts';
export type { InferenceLimits, PublishedModel } from './service-wire.ts';
