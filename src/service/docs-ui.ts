import type { FastifyInstance } from 'fastify';
import { defences } from '../core/defences.ts';
import { OPENAPI_DOCUMENT } from './openapi.ts';

/**
 * Content-Security-Policy of the /docs pages: Swagger UI's own scripts from this origin only
 * (no inline or foreign script), its inline style attributes, requests to this origin.
 */
export const DOCS_CSP: string = ["default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "connect-src 'self'", "font-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"].join('; ');

/**
 * The API reference at /docs: Swagger UI (`@fastify/swagger-ui`, files served from the npm
 * package, nothing from a CDN) over the OpenAPI document generated from the route table, with
 * request and response schemas and "Try it out" (Authorize takes the bearer token).
 *
 * @example
 * ```ts
 * await registerApiDocs(app); // GET /docs, /docs/json, /docs/static/*
 * ```
 */
export async function registerApiDocs(app: FastifyInstance): Promise<void> {
  const swagger = (await import('@fastify/swagger')).default;
  const swaggerUi = (await import('@fastify/swagger-ui')).default;
  await app.register(swagger, { mode: 'static', specification: { document: OPENAPI_DOCUMENT as never } });
  await app.register(async (scope) => {
    // Registered after the console's headers hook: this CSP replaces the console's on /docs only.
    scope.addHook('onSend', async (_req, reply, payload) => {
      if (defences.consoleCsp) void reply.header('content-security-policy', DOCS_CSP);
      return payload;
    });
    await scope.register(swaggerUi, { routePrefix: '/docs', staticCSP: false, uiConfig: { tryItOutEnabled: true, displayRequestDuration: true, defaultModelsExpandDepth: 2 } });
  });
}
