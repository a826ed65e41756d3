import type { Command } from 'commander';
import { CipherMLError } from '../core/errors.ts';
import { writeFileSafely } from '../core/io.ts';
import { IDENTITY_ROLES, generateIdentity, loadPublicIdentity, publicIdentityToJson, saveIdentity, type IdentityRole, type PublicIdentity } from '../core/identity.ts';

/** Prints a human line to stdout, or the object as one JSON line with --json. */
function out(json: boolean | undefined, obj: Record<string, unknown>, text: string): void {
  process.stdout.write(json === true ? `${JSON.stringify(obj)}\n` : `${text}\n`);
}

function describe(pub: PublicIdentity): Record<string, unknown> {
  return { role: pub.role, id: pub.id, fingerprint: pub.fingerprint };
}

/**
 * `cipherml identity create|show|roster`: party identities (Ed25519 signing keys) and the roster
 * of pinned public identities the federated runtime's identity mode needs (docs/fl.md).
 */
export function registerIdentityCommands(program: Command): void {
  const id = program.command('identity').description('party identities (Ed25519 signing keys) and rosters for the federated runtime\'s identity mode');

  id.command('create')
    .description('create an identity: FILE (secret signing key, mode 0600) and FILE.pub (public identity to pin)')
    .requiredOption('--role <role>', `one of ${IDENTITY_ROLES.join(', ')}`)
    .requiredOption('--id <id>', 'the party id (a worker\'s --id; any name for the server and the authority)')
    .requiredOption('--out <file>', 'secret identity file; the public identity goes to FILE.pub')
    .option('--json', 'print JSON')
    .action(async (o: { role: string; id: string; out: string; json?: boolean }) => {
      if (!(IDENTITY_ROLES as readonly string[]).includes(o.role)) {
        throw new CipherMLError('CIPHERML_E_INVALID_ARGUMENT', `--role must be one of ${IDENTITY_ROLES.join(', ')}, got ${JSON.stringify(o.role)}`, { param: '--role' });
      }
      const me = generateIdentity(o.role as IdentityRole, o.id);
      await saveIdentity(o.out, me);
      out(o.json, { ...describe(me), secretPath: o.out, publicPath: `${o.out}.pub` }, `wrote ${o.out} (secret, 0600) and ${o.out}.pub; ${me.role} ${me.id}, fingerprint ${me.fingerprint}`);
    });

  id.command('show')
    .description('print the role, id and fingerprint of an identity file (secret or .pub)')
    .argument('<file>', 'identity file')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const pub = await loadPublicIdentity(file, '<file>');
      out(o.json, describe(pub), `${pub.role} ${pub.id}\nfingerprint ${pub.fingerprint}`);
    });

  id.command('roster')
    .description('write a roster (JSON array of public identities) from .pub files, for --roster')
    .requiredOption('--out <file>', 'roster file to write')
    .argument('<pub...>', 'public identity files (.pub)')
    .option('--json', 'print JSON')
    .action(async (files: string[], o: { out: string; json?: boolean }) => {
      const pubs = await Promise.all(files.map((f, i) => loadPublicIdentity(f, `<pub>[${i}]`)));
      await writeFileSafely(o.out, `${JSON.stringify(pubs.map(publicIdentityToJson), null, 2)}\n`, { mode: 0o644 });
      out(o.json, { out: o.out, parties: pubs.map(describe) }, `wrote ${o.out}: ${pubs.map((p) => `${p.role} ${p.id}`).join(', ')}`);
    });
}
