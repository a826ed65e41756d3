import type { TSchema } from 'typebox';
import { CONSOLE_ROUTES, SESSION_COOKIE } from '../console/index.ts';
import { ERROR_STATUSES, ErrorBody, HyperParams, Job, Profile, ROUTES } from './schemas.ts';
import type { RouteSpec } from './schemas.ts';

/**
 * The service's OpenAPI 3.1 document (served at /api/v1/openapi.json) and the /docs page, both
 * generated from the route table in src/service/schemas.ts: the schemas fastify validates and
 * serializes with are the ones documented. Binary bodies are cipherml CKKS envelopes
 * (src/ckks/serialize.ts).
 */

const bin = { content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };

/** `:param` → `{param}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z]+)/g, '{$1}');
}

/** A TypeBox schema as plain JSON schema (TypeBox values are JSON schema plus symbols). */
function plain(schema: TSchema): Record<string, unknown> {
  const s = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  delete s['$id'];
  return s;
}

function parameters(spec: RouteSpec): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [where, schema] of [['path', spec.params], ['query', spec.querystring]] as const) {
    if (schema === undefined) continue;
    const props = (schema as unknown as { properties: Record<string, TSchema>; required?: string[] }).properties;
    for (const [name, s] of Object.entries(props)) out.push({ name, in: where, required: where === 'path' || ((schema as unknown as { required?: string[] }).required ?? []).includes(name), schema: plain(s) });
  }
  return out;
}

const errorStatuses = (spec: RouteSpec): string[] =>
  Object.keys(ERROR_STATUSES).filter((s) => (spec.auth || !['401', '403', '409', '429'].includes(s)) && (spec.heavy === true || s !== '429'));

function operation(spec: RouteSpec): Record<string, unknown> {
  const ok = spec.ok.schema === 'binary' ? { description: 'the bytes', ...bin } : spec.ok.schema === 'html' ? { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } : { description: 'success', content: { 'application/json': { schema: plain(spec.ok.schema) } } };
  const responses: Record<string, unknown> = { [String(spec.ok.status)]: ok };
  for (const s of errorStatuses(spec)) responses[s] = { description: ERROR_STATUSES[s], content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  return {
    summary: spec.summary,
    ...(spec.auth ? {} : { security: [] }),
    parameters: parameters(spec),
    ...(spec.body === 'binary' ? { requestBody: { required: true, ...bin } } : {}),
    ...(spec.body === 'json' && spec.jsonBody !== undefined ? { requestBody: { required: true, content: { 'application/json': { schema: plain(spec.jsonBody) } } } } : {}),
    'x-body-limit': spec.bodyLimit,
    responses,
  };
}

/** The fastify route schema of a route: request validation and success serialization (`naive`: the internal baseline of tests and bench). */
export function fastifySchema(spec: RouteSpec, naive = false): Record<string, unknown> {
  // The naive baseline (tests and bench only) validates no JSON body, as before issue 13.
  if (naive && spec.jsonBody !== undefined) return { ...(spec.params === undefined ? {} : { params: spec.params }) };
  return {
    ...(spec.params === undefined ? {} : { params: spec.params }),
    ...(spec.querystring === undefined ? {} : { querystring: spec.querystring }),
    ...(spec.jsonBody === undefined ? {} : { body: spec.jsonBody }),
    ...(typeof spec.ok.schema === 'string' || spec.url.endsWith('openapi.json') ? {} : { response: { [spec.ok.status]: spec.ok.schema } }),
  };
}

function buildPaths(): Record<string, Record<string, unknown>> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of ROUTES) (paths[openApiPath(spec.url)] ??= {})[spec.method.toLowerCase()] = operation(spec);
  // Web console routes (src/console): session cookie instead of a bearer token; every error status.
  for (const spec of CONSOLE_ROUTES) (paths[openApiPath(spec.url)] ??= {})[spec.method.toLowerCase()] = { ...operation({ ...spec, auth: true, heavy: true }), security: spec.session ? [{ session: [] }] : [] };
  return paths;
}

/**
 * The OpenAPI document of the REST API.
 *
 * @example
 * ```ts
 * Object.keys(OPENAPI_DOCUMENT.paths).length; // every route the service answers
 * ```
 */
export const OPENAPI_DOCUMENT: { readonly openapi: string; readonly info: Record<string, unknown>; readonly paths: Record<string, Record<string, unknown>>; readonly components: Record<string, unknown>; readonly security: readonly unknown[] } = {
  openapi: '3.1.0',
  info: {
    title: 'cipherml encrypted training service',
    version: '1',
    description:
      'Untrusted side of HE4Cloud-style training: the service stores public CKKS contexts and ciphertexts, trains logistic regression on encrypted data, and never holds a secret key. Every /api/v1 route except this document needs `Authorization: Bearer <token>`, checked before the body is read; errors are `{error: {code, message, param}}` with a stable code, for every status including 413, 414 and 431. `x-body-limit` is each route\'s body limit in bytes ("upload" = the service\'s --max-body-mb).',
  },
  // Either a bearer token or the web console's session cookie (with X-CSRF-Token on state changes).
  security: [{ bearer: [] }, { session: [] }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'web console session (POST also needs the X-CSRF-Token header)' } },
    schemas: { Error: plain(ErrorBody), HyperParams: plain(HyperParams), Profile: plain(Profile), Job: plain(Job) },
  },
  paths: buildPaths(),
};
