import { CipherMLError } from '../core/errors.ts';

/**
 * Browser-facing defences of the console: security headers, cookie handling, the CSRF check and
 * the sign-in rate limiter. Adversaries: a cross-site page in the user's browser (CSRF, framing,
 * injected script), and a network client guessing passwords.
 */

/**
 * Content Security Policy of every response: scripts only from this origin plus WebAssembly
 * compilation (`'wasm-unsafe-eval'`, CSP Level 3 §6.1.2; SEAL's wasm), no inline script, no
 * eval, no framing, fetches only to this origin.
 */
export const CSP: string = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers set on every response of a service that serves the console. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

/** Name of the session cookie (httpOnly, SameSite=Strict, Path=/). */
export const SESSION_COOKIE = 'cml_session';
/** Header that must carry the session's CSRF token on every state-changing request. */
export const CSRF_HEADER = 'x-csrf-token';

/** The value of cookie `name` in a Cookie header (first occurrence), or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{1,128}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

/** The Set-Cookie value of a session (Secure when served over TLS). */
export function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}${secure ? '; Secure' : ''}`;
}

/**
 * Refuses a cross-origin state-changing request: when the browser sent `Origin` (every browser
 * does on POST/PUT/DELETE fetches), its host must be this request's `Host`. Covers sign-in and
 * sign-up too (login CSRF), where no session token exists yet.
 */
export function checkOrigin(origin: string | undefined, host: string | undefined): void {
  if (origin === undefined) return;
  let h: string;
  try {
    h = new URL(origin).host;
  } catch {
    h = '';
  }
  if (host === undefined || h !== host) throw new CipherMLError('CIPHERML_E_SERVICE_FORBIDDEN', `cross-origin request from ${origin.slice(0, 100)} refused`, { param: 'Origin', advice: 'The console API accepts state-changing requests only from pages served by this service.' });
}

/** Constant-time string comparison of two CSRF tokens. */
export function sameToken(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

/** Limits of {@link RateLimiter}. */
export interface RateLimits {
  /** Failed sign-ins per user name per window before that name is locked for the window (default 5). */
  readonly failuresPerName: number;
  /** Failed sign-ins per client address per window (default 20). */
  readonly failuresPerAddress: number;
  /** Sign-ups per client address per window (default 10). */
  readonly signupsPerAddress: number;
  /** Window length in ms (default 15 minutes). */
  readonly windowMs: number;
}

/** Default {@link RateLimits}. */
export const DEFAULT_RATE_LIMITS: RateLimits = { failuresPerName: 5, failuresPerAddress: 20, signupsPerAddress: 10, windowMs: 15 * 60_000 };

/** Counters kept at most (oldest dropped first): memory is bounded whatever the clients send. */
const MAX_KEYS = 10_000;

/**
 * Fixed-window counters in memory (per process: a deployment behind several processes gets the
 * limit per process). Checked before the password hash runs, so a locked-out guess costs no KDF.
 *
 * @example
 * ```ts
 * const rl = new RateLimiter(DEFAULT_RATE_LIMITS);
 * rl.check(['name:alice', 'addr:10.0.0.1'], [5, 20]);
 * ```
 */
export class RateLimiter {
  readonly #limits: RateLimits;
  readonly #now: () => number;
  readonly #counts = new Map<string, { n: number; until: number }>();

  constructor(limits: RateLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  get limits(): RateLimits {
    return this.#limits;
  }

  #entry(key: string): { n: number; until: number } {
    const now = this.#now();
    let e = this.#counts.get(key);
    if (e === undefined || e.until <= now) {
      e = { n: 0, until: now + this.#limits.windowMs };
      this.#counts.delete(key);
      if (this.#counts.size >= MAX_KEYS) this.#counts.delete(this.#counts.keys().next().value!);
      this.#counts.set(key, e);
    }
    return e;
  }

  /** Throws CIPHERML_E_SERVICE_BUSY when any key reached its limit in this window. */
  check(keys: readonly string[], limits: readonly number[], what: string): void {
    keys.forEach((k, i) => {
      const e = this.#entry(k);
      if (e.n >= limits[i]!) {
        const seconds = Math.ceil((e.until - this.#now()) / 1000);
        throw new CipherMLError('CIPHERML_E_SERVICE_BUSY', `too many ${what}; try again in ${seconds} s`, { param: k.startsWith('name:') ? 'name' : 'address', details: { retryAfterSeconds: seconds }, advice: `Wait ${seconds} s before the next attempt.` });
      }
    });
  }

  hit(keys: readonly string[]): void {
    for (const k of keys) this.#entry(k).n++;
  }

  reset(key: string): void {
    this.#counts.delete(key);
  }
}
