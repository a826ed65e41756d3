/**
 * The service's OpenAPI 3.1 document (served at /api/v1/openapi.json) and the /docs page built
 * from it. Binary bodies are cipherml CKKS envelopes (src/ckks/serialize.ts).
 */

const bin = { content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } };
const err = { description: 'typed error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const ok = (description: string): Record<string, unknown> => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const errors = { '400': err, '401': err, '403': err, '404': err, '409': err, '413': err };
const base = '/api/v1/{model}/{version}';
const params = [
  { name: 'model', in: 'path', required: true, schema: { type: 'string' } },
  { name: 'version', in: 'path', required: true, schema: { type: 'string' } },
];
const jobParams = [...params, { name: 'jobId', in: 'path', required: true, schema: { type: 'string' } }];
const upload = (summary: string): Record<string, unknown> => ({
  put: { summary: `Upload ${summary}`, parameters: params, requestBody: bin, responses: { '200': ok('stored (size, sha256)'), ...errors } },
  get: { summary: `Download ${summary}`, parameters: params, responses: { '200': { description: 'the bytes', ...bin }, ...errors } },
});

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
    description: 'Untrusted side of HE4Cloud-style training: the service stores public CKKS contexts and ciphertexts, trains logistic regression on encrypted data, and never holds a secret key. Every /api/v1 route needs `Authorization: Bearer <token>`; errors are `{error: {code, message, param}}` with a stable code.',
  },
  security: [{ bearer: [] }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: { type: 'object', properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', example: 'CIPHERML_E_SERVICE_NOT_FOUND' }, message: { type: 'string' }, param: { type: 'string' }, details: { type: 'object' } } } } },
      HyperParams: { type: 'object', required: ['numberOfEpochs', 'learningRate', 'numberOfFeatures'], properties: { numberOfEpochs: { type: 'integer', minimum: 1, maximum: 100 }, learningRate: { type: 'number', exclusiveMinimum: 0, maximum: 10 }, numberOfFeatures: { type: 'integer', minimum: 1, maximum: 4096 }, logisticRegressionActivation: { const: 'sigmoid_poly_3_approximation' } } },
      Job: { type: 'object', properties: { jobId: { type: 'string' }, status: { enum: ['queued', 'running', 'awaiting_refresh', 'succeeded', 'failed'] }, progress: { type: 'number' }, error: { type: ['object', 'null'] }, figures: { type: 'object' } } },
    },
  },
  paths: {
    '/api/v1/info/version': { get: { summary: 'Service and HE library versions, scheme', responses: { '200': ok('versions'), ...errors } } },
    '/api/v1/models': { get: { summary: 'List deployed models', responses: { '200': ok('models'), ...errors } } },
    [`${base}/deploy_model`]: { post: { summary: 'Deploy a model (owner role); returns the model base URL', parameters: params, responses: { '200': ok('{modelUrl}'), ...errors } } },
    [`${base}/undeploy_model`]: { delete: { summary: 'Undeploy (owner who deployed it); 409 while users are registered', parameters: params, responses: { '200': ok('undeployed'), ...errors } } },
    [`${base}/application/register_user`]: { post: { summary: 'Register the calling user for the model', parameters: params, responses: { '200': ok('registered'), ...errors } } },
    [`${base}/application/unregister_user`]: { delete: { summary: "Unregister; deletes the user's keys, data, models, jobs and usage for this model", parameters: params, responses: { '200': ok('unregistered'), ...errors } } },
    [`${base}/add_profile`]: { post: { summary: 'Store requirements such as batchSize', parameters: params, requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { batchSize: { type: 'integer' } } } } } }, responses: { '200': ok('profile'), ...errors } } },
    [`${base}/context/public`]: upload('the public CKKS context (parameters, public, relinearization and Galois keys)'),
    [`${base}/context/secret`]: upload("the gateway's passphrase-encrypted secret context (opaque)"),
    [`${base}/model`]: upload('the encrypted initial model (bias and coefficients)'),
    [`${base}/data/fit`]: upload('the encrypted training data (column-packed features and labels)'),
    [`${base}/model/trained`]: upload('the encrypted trained model'),
    [`${base}/fit`]: { post: { summary: 'Start an asynchronous fit job', parameters: params, requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/HyperParams' } } } }, responses: { '202': ok('{jobId}'), ...errors } } },
    [`${base}/jobs/{jobId}`]: { get: { summary: 'Job status, progress, error and figures', parameters: jobParams, responses: { '200': { description: 'job', content: { 'application/json': { schema: { $ref: '#/components/schemas/Job' } } } }, ...errors } } },
    [`${base}/jobs/{jobId}/refresh`]: {
      get: { summary: 'Encrypted weights waiting for a gateway refresh', parameters: jobParams, responses: { '200': { description: 'ciphertexts', ...bin }, ...errors } },
      put: { summary: 'Freshly re-encrypted weights from the gateway', parameters: jobParams, requestBody: bin, responses: { '200': ok('accepted'), ...errors } },
    },
    [`${base}/predict`]: { post: { summary: 'Encrypted logits w·x + b for encrypted feature rows (?features=F)', parameters: [...params, { name: 'features', in: 'query', required: true, schema: { type: 'integer' } }], requestBody: bin, responses: { '200': { description: 'encrypted scores', ...bin }, ...errors } } },
    [`${base}/usage`]: { get: { summary: 'Usage figures (bytes in/out, train and predict time, calls)', parameters: params, responses: { '200': ok('usage'), ...errors } } },
  },
};

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/**
 * The /docs page: every route with its summary, from {@link OPENAPI_DOCUMENT}.
 *
 * @example
 * ```ts
 * docsPage().includes('/api/v1/info/version'); // true
 * ```
 */
export function docsPage(): string {
  const rows = Object.entries(OPENAPI_DOCUMENT.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${esc(path)}</code></td><td>${esc(String((op as { summary?: string }).summary ?? ''))}</td></tr>`),
  );
  return `<!doctype html><html><head><meta charset="utf-8"><title>cipherml service API</title></head><body><h1>${esc(String(OPENAPI_DOCUMENT.info['title']))}</h1><p>${esc(String(OPENAPI_DOCUMENT.info['description']))}</p><p>Machine-readable: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p><table border="1" cellpadding="4"><tr><th>method</th><th>path</th><th>what</th></tr>${rows.join('')}</table></body></html>`;
}
