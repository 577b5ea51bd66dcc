/**
 * The operator's account commands (`npm run admin -- <command>`): list accounts, disable or
 * enable one, make an invitation code, delete an account. Works on the same Redis and
 * KEY_PREFIX as the gateways, so a change applies to every gateway at once.
 */
import type { Account, AccountStore } from '../store/account-store.js';
import type { PersonData } from '../store/person-data.js';

export const ADMIN_USAGE = `Usage: npm run admin -- <command>
  list                 every account: username, display name, id, created, status, sign-in
  disable <username>   the account can no longer sign in; its sessions and tokens end at once
  enable <username>    undo disable (the person signs in again)
  invite               print a single-use invitation code (for SIGNUP=invite)
  delete <username>    delete the account, its sign-ins, its name and all its conversations`;

export interface AdminOutput {
  line(text: string): void;
  error(text: string): void;
}

function row(account: Account): string {
  const signIn = [account.local ? 'password' : undefined, account.oidcIssuer === undefined ? undefined : `oidc ${account.oidcIssuer}`].filter(Boolean).join(', ');
  // Display names hold no control characters (isValidDisplayName), so no tab or line break.
  return [account.username, account.displayName, account.id, new Date(account.createdAt).toISOString(), account.disabled ? 'disabled' : 'active', signIn].join('\t');
}

export interface AdminStores {
  readonly accounts: AccountStore;
  readonly personData: PersonData;
}

/** Runs one command; returns the process exit code (0 done, 1 no such account, 2 usage). */
export async function runAdmin(args: readonly string[], { accounts, personData }: AdminStores, out: AdminOutput, inviteDays: number): Promise<number> {
  const [command, username, ...rest] = args;
  const needsName = command === 'disable' || command === 'enable' || command === 'delete';
  if (command === undefined || rest.length > 0 || needsName !== (username !== undefined)) {
    out.error(ADMIN_USAGE);
    return 2;
  }
  if (command === 'list') {
    out.line(['username', 'display name', 'id', 'created', 'status', 'sign-in'].join('\t'));
    for (const account of await accounts.list()) out.line(row(account));
    return 0;
  }
  if (command === 'invite') {
    out.line(await accounts.createInvite(inviteDays));
    out.error(`Single use, valid for ${inviteDays} days (INVITE_DAYS).`);
    return 0;
  }
  if (!needsName) {
    out.error(`Unknown command "${command}".\n${ADMIN_USAGE}`);
    return 2;
  }
  const account = await accounts.findByUsername(username ?? '');
  if (account === null) {
    out.error(`No account is named "${username ?? ''}".`);
    return 1;
  }
  if (command === 'delete') {
    await personData.delete(account.id);
    out.line(`Deleted ${account.username} (${account.id}) and all its conversations.`);
  } else {
    await accounts.setDisabled(account.id, command === 'disable');
    out.line(command === 'disable' ? `Disabled ${account.username}: its sessions and tokens have ended.` : `Enabled ${account.username}.`);
  }
  return 0;
}
