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
export type { AuthorityKeyHolderOptions, KeyAuthorityOptions } from './authority.ts';
export { DEV_MODE_WARNING, FRESHNESS_MS, ReplayGuard, SIG_CONTEXT, keyStatement, loadPartyTrust, signRequest, verifyRequest } from './identity-auth.ts';
export type { PartyTrust, RequestSignature } from './identity-auth.ts';
export { acceptPaillierKey } from './key-pinning.ts';
export type { KeyTrust, OfferedKey } from './key-pinning.ts';
export { PaillierFedAvg, PlainFedAvg, weightedFlat, zeroModel } from './strategy.ts';
export type { FitOutcome, GlobalModel, KeyVouch, PaillierKeyHolder, SignedUpdate, StageReport, StageRunner, Strategy, StrategyInfo } from './strategy.ts';
export { SecAggFedAvg, advertiseKeys, answerStage, beginWorkerRound } from './secagg.ts';
export type { SecAggRoundReport, SecAggSettings, SecAggWorkerOptions, SecAggWorkerRound } from './secagg.ts';
export { PROTOCOL_VERSION, checkToken, parameterCount, deriveToken, flatten, tensorsFromWire, tensorsToWire, unflatten } from './protocol.ts';
export type { NamedTensor } from './protocol.ts';
export { INSECURE_PLAINTEXT_LABEL, createRpcTransport, isLoopbackHost, parseAddress, startRpcServer, usesTls } from './transport.ts';
export type { RpcServer, TlsFiles } from './transport.ts';
export { simulate } from './simulate.ts';
export type { SimulationOptions, SimulationResult } from './simulate.ts';
export { buildStrategy, fitConfigOf, packingFor, secAggSettings, serverSettings } from './run.ts';
export { describeServerEvent, describeWorkerEvent, summaryJson } from './describe.ts';
export { logRegClient, loadLogRegClient, logRegEvaluator } from './apps/logreg.ts';
export type { LogRegDefaults } from './apps/logreg.ts';
export { initialModel, nnClient, nnEvaluator, toNamed } from './apps/nn.ts';
export type { NnDefaults } from './apps/nn.ts';
export { ServerOptStrategy } from './strategies-opt.ts';
export type { ServerOptSettings, ServerOptimizer } from './strategies-opt.ts';
export * from './config.ts';
export { ThresholdFedAvg } from './threshold-strategy.ts';
export type { HolderEndpoint, ThresholdFedAvgOptions, ThresholdRoundReport } from './threshold-strategy.ts';
export { ThresholdKeyHolder } from './threshold-holder.ts';
export type { HolderEvent, ThresholdKeyHolderOptions } from './threshold-holder.ts';
export { thresholdContributionSigner } from './threshold-worker.ts';
export { CONTRIBUTION_CONTEXT, contributionKeyId, isSignedContribution, openContribution, productDigest, sealContribution, verifyContribution, verifyContributionSet } from './contribution.ts';
export type { ContributionFields, ContributionSetHooks, ContributionSetRules, OpenedContribution, VerifiedContributionSet } from './contribution.ts';
export { buildThresholdStrategy } from './threshold-run.ts';
export type { ContributionSigner } from './worker.ts';
