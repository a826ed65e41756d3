/**
 * cipherml/inference — encrypted inference of ONNX models with CKKS (after HE-MAN, ICMLT 2023).
 *
 * - {@link parseOnnx} / {@link serializeOnnx}: ONNX ModelProto ⇄ a small graph IR (onnx-proto).
 * - {@link runPlain}: the plaintext reference executor (checked against onnxruntime in tests).
 * - {@link runBatch}: the batch plan, one sample per CKKS slot; linear layers are composed
 *   symbolically and cost one level together; {@link batchDepth} gives the levels it needs.
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
export { batchDepth, runBatch } from './batch.ts';
export type { RunBatchOptions } from './batch.ts';
export { GraphBuilder } from './builder.ts';
export { assertSupported, execute, PLAIN, runPlain, SUPPORTED_OPERATORS } from './execute.ts';
export type { Algebra, DynTensor, ExecuteOptions } from './execute.ts';
export { parseOnnx, serializeOnnx, sizeOf } from './onnx.ts';
export type { AttributeValue, Graph, GraphNode, Tensor } from './onnx.ts';
