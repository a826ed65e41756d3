/**
 * cipherml/fl — federated learning over gRPC: parameter server, workers, key authority,
 * plain, Paillier and secure-aggregation FedAvg, run configuration, in-process simulation.
 *
 * @example
 * ```ts
 * import { simulate, resolveRunConfig, logRegClient } from 'cipherml/fl';
 * const config = resolveRunConfig({ flags: { strategy: 'paillier', numServerRounds: 10 } });
 * const { server } = await simulate({ config, clients: [{ id: '1', client: a }, { id: '2', client: b }] });
 * ```
 */
// Runs first: refuses Node.js older than 24 with one clear error (see core/node-version.ts).
import '../core/node-version.ts';
export { FlServer, historySvg } from './server.ts';
export type { EvalMetrics, FlServerOptions, RoundRecord, RunSummary, ServerEvent, ServerSettings } from './server.ts';
export { runWorker } from './worker.ts';
export type { EvaluateOutput, FitOutput, FlClient, WorkerEvent, WorkerOptions, WorkerSummary } from './worker.ts';
export { KeyAuthority, authorityKeyHolder } from './authority.ts';
export type { KeyAuthorityOptions } from './authority.ts';
export { PaillierFedAvg, PlainFedAvg, weightedFlat, zeroModel } from './strategy.ts';
export type { FitOutcome, GlobalModel, PaillierKeyHolder, StageReport, StageRunner, Strategy, StrategyInfo } from './strategy.ts';
export { SecAggFedAvg, answerStage, beginWorkerRound } from './secagg.ts';
export type { SecAggRoundReport, SecAggSettings, SecAggWorkerRound } from './secagg.ts';
export { PROTOCOL_VERSION, checkToken, parameterCount, deriveToken, flatten, tensorsFromWire, tensorsToWire, unflatten } from './protocol.ts';
export type { NamedTensor } from './protocol.ts';
export { createRpcTransport, parseAddress, startRpcServer } from './transport.ts';
export type { RpcServer, TlsFiles } from './transport.ts';
export { simulate } from './simulate.ts';
export type { SimulationOptions, SimulationResult } from './simulate.ts';
export { buildStrategy, fitConfigOf, packingFor, secAggSettings, serverSettings } from './run.ts';
export { describeServerEvent, describeWorkerEvent, summaryJson } from './describe.ts';
export { logRegClient, loadLogRegClient, logRegEvaluator } from './apps/logreg.ts';
export type { LogRegDefaults } from './apps/logreg.ts';
export * from './config.ts';
