import { CipherMLError } from '../core/errors.ts';

/**
 * Security parameters of secure aggregation: the Shamir threshold t and the SecAgg+ degree k, as
 * the server chooses them and as every client checks them before it shares anything.
 *
 * Complete graph (`pw`, or SecAgg+ when k would reach n − 1): t must exceed n/2, or 2n/3 when
 * the server may collude with clients (Bonawitz et al., CCS 2017, Theorems 6.2 and 6.5 and
 * MindSpore's reconstruct_secrets_threshold rule), and at least the ⌊γ·n⌋ corrupt clients the
 * policy tolerates.
 *
 * SecAgg+ (Bell et al., CCS 2020, §3 and the parameter analysis of its Theorem 3.6): the
 * neighbours of a client in the randomly labelled Harary graph H(n, k) are a uniform k-subset of
 * the others, so for tolerated corrupt fraction γ, dropout rate δ, statistical security σ and
 * correctness η = {@link CORRECTNESS_BITS}, k and t must satisfy, by union bounds over the n
 * clients:
 *
 *   (connectivity) n·(γ + δ)^{k/2} ≤ 2^{−σ}: no run of k/2 consecutive corrupt or dropped
 *                  clients on the ring, so the honest survivors' graph stays connected and the
 *                  server learns only the sum of all of them;
 *   (privacy)      n·Pr[Bin(k, γ) ≥ t + 1] ≤ 2^{−σ}: no honest client has t + 1 corrupt
 *                  neighbours, who could hand the server both of its secrets;
 *   (correctness)  n·Pr[Bin(k + 1, δ) ≥ k + 1 − t] ≤ 2^{−η}: every client keeps t + 1
 *                  surviving share holders.
 *
 * The binomial tails are computed exactly in log space (they bound the hypergeometric tails of
 * sampling without replacement, Hoeffding 1963 §6). k is the smallest even degree for which a t
 * satisfies both privacy and correctness; t is the smallest that satisfies privacy.
 */

/** What a party assumes about the other parties (run-config keys `secagg-corrupt-fraction`, `secagg-dropout-rate`, `secagg-statistical-security`, `collusion-model`). */
export interface SecurityPolicy {
  /** γ: fraction of clients that may be corrupt and colluding with the server, in [0, 1). */
  readonly corruptFraction: number;
  /** δ: fraction of clients expected to drop out during a round, in [0, 1). */
  readonly dropoutRate: number;
  /** σ: the protocol's privacy fails with probability at most 2^{−σ} per round. */
  readonly statisticalSecurity: number;
  /** The server may collude with clients: t > 2n/3 on a complete graph (else t > n/2). */
  readonly collusion: boolean;
}

/**
 * Defaults: γ = 1/3, δ = 0.1, σ = 40, no collusion rule beyond γ.
 *
 * @example
 * ```ts
 * secAggPlusParameters(1000, DEFAULT_SECURITY_POLICY); // { degree: 116, threshold: 81, complete: false }
 * ```
 */
export const DEFAULT_SECURITY_POLICY: SecurityPolicy = Object.freeze({ corruptFraction: 1 / 3, dropoutRate: 0.1, statisticalSecurity: 40, collusion: false });

/** η: a round fails for lack of share holders with probability at most 2^{−η}. */
export const CORRECTNESS_BITS = 20;

/** Checks on a threshold against the collusion rule (MindSpore's rules for reconstruct-secrets-threshold). */
export interface ThresholdPolicy {
  /** Whether the server may collude with clients: then t must exceed 2n/3, else n/2. */
  readonly collusion: boolean;
  /** Refuse (default) or only warn when the rule is broken. */
  readonly onViolation?: 'refuse' | 'warn';
}

/**
 * Checks t against the number of share holders n: t + 1 ≤ n always; t > n/2 (no collusion) or
 * t > 2n/3 (server and clients may collude), refused or returned as a warning.
 *
 * @example
 * ```ts
 * checkThreshold(4, 5, { collusion: false }); // ok: 4 > 2.5 and 5 ≤ 5
 * ```
 */
export function checkThreshold(threshold: number, holders: number, policy: ThresholdPolicy): string | null {
  if (threshold + 1 > holders) {
    throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `reconstruction needs threshold + 1 = ${threshold + 1} share holders, only ${holders} take part`, { param: 'reconstruct-secrets-threshold' });
  }
  const bound = policy.collusion ? (2 * holders) / 3 : holders / 2;
  if (threshold > bound) return null;
  const msg = `threshold ${threshold} must exceed ${policy.collusion ? '2n/3' : 'n/2'} = ${bound.toFixed(2)} for n = ${holders} share holders${policy.collusion ? ' when the server may collude with clients' : ''}`;
  if ((policy.onViolation ?? 'refuse') === 'refuse') throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', msg, { param: 'reconstruct-secrets-threshold' });
  return msg;
}

/**
 * Checks a security policy's ranges; throws CIPHERML_E_CONFIG_INVALID naming the config key.
 *
 * @example
 * ```ts
 * checkSecurityPolicy({ ...DEFAULT_SECURITY_POLICY, corruptFraction: 0.9 }); // throws: γ + δ ≥ 1
 * ```
 */
export function checkSecurityPolicy(p: SecurityPolicy): void {
  const bad = (key: string, problem: string) => new CipherMLError('CIPHERML_E_CONFIG_INVALID', problem, { param: key });
  if (!(p.corruptFraction >= 0 && p.corruptFraction < 1)) throw bad('secagg-corrupt-fraction', `γ = ${p.corruptFraction} must be in [0, 1)`);
  if (!(p.dropoutRate >= 0 && p.dropoutRate < 1)) throw bad('secagg-dropout-rate', `δ = ${p.dropoutRate} must be in [0, 1)`);
  if (!(p.corruptFraction + p.dropoutRate < 1)) throw bad('secagg-corrupt-fraction', `γ + δ = ${p.corruptFraction + p.dropoutRate} must be below 1: no honest survivor would remain`);
  if (!(Number.isInteger(p.statisticalSecurity) && p.statisticalSecurity >= 8 && p.statisticalSecurity <= 128)) {
    throw bad('secagg-statistical-security', `σ = ${p.statisticalSecurity} must be an integer in 8..128`);
  }
}

/** ln C(k, j) + j·ln p + (k − j)·ln(1 − p), from a table of ln j!. */
const LN_FACT: number[] = [0];
function lnFact(n: number): number {
  for (let i = LN_FACT.length; i <= n; i++) LN_FACT.push(LN_FACT[i - 1]! + Math.log(i));
  return LN_FACT[n]!;
}

/** log2 Pr[Bin(k, p) ≥ m], exactly (log-sum-exp over the tail). */
export function log2BinomialTail(k: number, p: number, m: number): number {
  if (m <= 0) return 0;
  if (m > k) return -Infinity;
  if (p <= 0) return -Infinity;
  if (p >= 1) return 0;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  const terms: number[] = [];
  for (let j = m; j <= k; j++) terms.push(lnFact(k) - lnFact(j) - lnFact(k - j) + j * lp + (k - j) * lq);
  const max = Math.max(...terms);
  const sum = terms.reduce((a, t) => a + Math.exp(t - max), 0);
  return (max + Math.log(sum)) / Math.LN2;
}

/** The smallest t with n·Pr[Bin(k, γ) ≥ t + 1] ≤ 2^{−σ} (privacy of a client with k neighbours). */
export function privacyThreshold(n: number, k: number, policy: SecurityPolicy): number {
  const budget = -policy.statisticalSecurity - Math.log2(n);
  for (let t = 0; t <= k; t++) if (log2BinomialTail(k, policy.corruptFraction, t + 1) <= budget) return t;
  return k + 1;
}

/** The largest t with n·Pr[Bin(k + 1, δ) ≥ k + 1 − t] ≤ 2^{−η} (t + 1 holders survive), or −1. */
function correctnessThreshold(n: number, k: number, policy: SecurityPolicy): number {
  const budget = -CORRECTNESS_BITS - Math.log2(n);
  for (let t = k; t >= 0; t--) if (log2BinomialTail(k + 1, policy.dropoutRate, k + 1 - t) <= budget) return t;
  return -1;
}

/** The smallest t a complete graph of n share holders needs: the collusion rule and ⌊γ·n⌋ corrupt holders. */
export function completeGraphThreshold(n: number, policy: SecurityPolicy): number {
  const rule = Math.floor(policy.collusion ? (2 * n) / 3 : n / 2) + 1;
  return Math.max(rule, Math.floor(policy.corruptFraction * n));
}

/** SecAgg+ degree and threshold for a round of n clients. */
export interface DerivedParameters {
  /** Neighbours per client (even, or n − 1 for a complete graph). */
  readonly degree: number;
  /** Shamir degree t. */
  readonly threshold: number;
  /** True when the derived graph is complete (k would reach n − 1). */
  readonly complete: boolean;
}

/**
 * The SecAgg+ degree k and threshold t for n clients under `policy` (Bell et al. 2020; the
 * conditions are in this module's comment). Falls back to the complete graph when no sparse
 * graph below n − 1 neighbours satisfies them.
 *
 * @example
 * ```ts
 * secAggPlusParameters(10_000, DEFAULT_SECURITY_POLICY).degree; // 124
 * ```
 */
export function secAggPlusParameters(n: number, policy: SecurityPolicy = DEFAULT_SECURITY_POLICY): DerivedParameters {
  checkSecurityPolicy(policy);
  if (!(Number.isInteger(n) && n >= 3)) throw new CipherMLError('CIPHERML_E_CONFIG_INVALID', `secure aggregation with dropout recovery needs at least 3 clients, got ${n}`, { param: 'min-fit-clients' });
  const unavailable = policy.corruptFraction + policy.dropoutRate;
  const budget = policy.statisticalSecurity + Math.log2(n);
  let k = unavailable <= 0 ? 2 : 2 * Math.ceil(budget / -Math.log2(unavailable) / 1);
  if (k % 2 !== 0) k++;
  for (; k < n - 1; k += 2) {
    const t = privacyThreshold(n, k, policy);
    if (t <= correctnessThreshold(n, k, policy)) return { degree: k, threshold: t, complete: false };
  }
  return { degree: n - 1, threshold: completeGraphThreshold(n, policy), complete: true };
}

/**
 * The SecAgg+ degree for n clients under the default policy (see {@link secAggPlusParameters}).
 *
 * @example
 * ```ts
 * secAggPlusDegree(1000); // 116
 * ```
 */
export function secAggPlusDegree(n: number, policy: SecurityPolicy = DEFAULT_SECURITY_POLICY): number {
  return secAggPlusParameters(n, policy).degree;
}

/** What the server announced for a round, as a client checks it. */
export interface AnnouncedParameters {
  readonly mode: 'pw' | 'stable-pw' | 'secagg+';
  /** |U1|: clients in the roster. */
  readonly clients: number;
  readonly degree: number;
  readonly threshold: number;
}

function refuseParam(param: string, problem: string, details: Record<string, unknown>): CipherMLError {
  return new CipherMLError('CIPHERML_E_SECAGG_PARAMETER_REFUSED', problem, { param, details });
}

/**
 * A client's check of the security parameters a (possibly malicious) server announced, before it
 * shares a secret: the threshold against the collusion rule or the SecAgg+ privacy bound for the
 * roster size, and the SecAgg+ degree against the derived minimum. Refusals are
 * CIPHERML_E_SECAGG_PARAMETER_REFUSED naming the run-config key (`reconstruct-secrets-threshold`,
 * `num-shares`).
 *
 * @example
 * ```ts
 * checkAnnouncedParameters({ mode: 'pw', clients: 5, degree: 4, threshold: 1 }, DEFAULT_SECURITY_POLICY); // throws: t = 1 ≤ n/2
 * ```
 */
export function checkAnnouncedParameters(a: AnnouncedParameters, policy: SecurityPolicy): void {
  if (a.mode === 'stable-pw') return;
  const n = a.clients;
  if (n < 3) throw refuseParam('min-fit-clients', `${n} clients in the roster: dropout recovery needs at least 3`, { clients: n });
  const complete = a.mode === 'pw' || a.degree >= n - 1;
  if (a.mode === 'secagg+') {
    const derived = secAggPlusParameters(n, policy);
    const minDegree = derived.complete ? n - 1 : derived.degree;
    if (a.degree < minDegree) {
      throw refuseParam('num-shares', `SecAgg+ degree k = ${a.degree} (num-shares ${a.degree + 1}) is below the minimum ${minDegree} for n = ${n} clients, γ = ${policy.corruptFraction.toFixed(3)}, δ = ${policy.dropoutRate}, σ = ${policy.statisticalSecurity}`, {
        degree: a.degree,
        minimum: minDegree,
        clients: n,
      });
    }
  }
  const holders = complete ? n : a.degree + 1;
  const minT = complete ? completeGraphThreshold(n, policy) : privacyThreshold(n, a.degree, policy);
  if (a.threshold < minT) {
    const rule = complete ? `the ${policy.collusion ? 't > 2n/3' : 't > n/2'} rule and ⌊γ·n⌋ corrupt clients` : `Pr[an honest client has t + 1 corrupt neighbours] ≤ 2^-${policy.statisticalSecurity}`;
    throw refuseParam('reconstruct-secrets-threshold', `threshold t = ${a.threshold} is below ${minT}, the least that ${rule} allow for n = ${n} clients${complete ? '' : ` with ${a.degree} neighbours`}`, {
      threshold: a.threshold,
      minimum: minT,
      clients: n,
    });
  }
  if (a.threshold + 1 > holders) {
    throw refuseParam('reconstruct-secrets-threshold', `threshold t = ${a.threshold} needs ${a.threshold + 1} share holders, only ${holders} hold shares`, { threshold: a.threshold, holders });
  }
}

/**
 * Size of the commit–reveal committee whose reveals fix the SecAgg+ graph seed (graph.ts
 * seedCommittee): the least m with γ^m ≤ 2^{−σ}, at most n. The committee is a uniform m-subset of
 * U1 drawn from the roster root, so it is all corrupt (and the server could predict the seed
 * before fixing U1) with probability at most γ^m per roster the server tries (sampling without
 * replacement from a roster with at most γ·n corrupt members); with one honest member the seed is
 * uniform and unknown until that member reveals, after U1 is fixed.
 *
 * @example
 * ```ts
 * seedCommitteeSize(1000, DEFAULT_SECURITY_POLICY); // 26 (γ = 1/3, σ = 40)
 * ```
 */
export function seedCommitteeSize(n: number, policy: SecurityPolicy = DEFAULT_SECURITY_POLICY): number {
  const g = policy.corruptFraction;
  const m = g <= 0 ? 1 : Math.ceil(policy.statisticalSecurity / -Math.log2(g));
  return Math.max(1, Math.min(n, m));
}
