/** core/node-version.ts on the browser path: there is no Node.js version to check. */
export {};
