/**
 * Everything Parley keeps about one person, as a whole: the export they can download and the
 * deletion that leaves nothing behind (their own request, or the operator's `admin delete`).
 */
import { conversationIndexKeys } from '../contracts/keys.js';
import type { AccountStore } from './account-store.js';
import type { ConversationData, ConversationStore } from './conversation-store.js';

export interface PersonExport {
  readonly exportedAt: string;
  readonly account: {
    readonly id: string;
    readonly username: string;
    readonly displayName: string;
    readonly createdAt: string;
    readonly signIn: { readonly password: boolean; readonly oidcIssuer: string | null };
  };
  /** Every conversation as its own JSON export has it (every branch, with parent and head). */
  readonly conversations: ConversationData[];
}

/** The commands a person's data takes: the conversation index, read and removed. */
export interface PersonDataRedis {
  zRange(key: string, start: number, stop: number, options: { REV: true }): Promise<string[]>;
  unlink(keys: string[]): Promise<unknown>;
}

export class PersonData {
  constructor(
    private readonly redis: PersonDataRedis,
    private readonly accounts: AccountStore,
    private readonly conversations: ConversationStore,
    private readonly prefix: string,
  ) {}

  /** Null when the account does not exist (any more). */
  async export(accountId: string): Promise<PersonExport | null> {
    const account = await this.accounts.get(accountId);
    if (account === null) return null;
    const conversations: ConversationData[] = [];
    // One at a time: an export of a thousand conversations must not crowd out everyone else's work.
    for (const id of await this.conversationIds(accountId)) {
      const exported = await this.conversations.exportData(accountId, id);
      if (exported !== null) conversations.push(exported);
    }
    return {
      exportedAt: new Date().toISOString(),
      account: {
        id: account.id,
        username: account.username,
        displayName: account.displayName,
        createdAt: new Date(account.createdAt).toISOString(),
        signIn: { password: account.local, oidcIssuer: account.oidcIssuer ?? null },
      },
      conversations,
    };
  }

  /**
   * Deletes every conversation, then the account with its sign-ins, then any conversation started
   * in between (the account's deletion disables it first, so none can start after it). Stopped
   * half-way, the account is still there to sign in with and delete again; deleted first, it would
   * leave conversations nobody can reach.
   */
  async delete(accountId: string): Promise<boolean> {
    await this.removeConversations(accountId);
    const deleted = await this.accounts.delete(accountId);
    await this.removeConversations(accountId);
    const keys = conversationIndexKeys(this.prefix, accountId);
    await this.redis.unlink([keys.index, keys.titles]);
    return deleted;
  }

  private async removeConversations(accountId: string): Promise<void> {
    for (const id of await this.conversationIds(accountId)) await this.conversations.remove(accountId, id);
  }

  /** Newest first, straight from the index: also entries the list would skip (a session already gone). */
  private async conversationIds(accountId: string): Promise<string[]> {
    return this.redis.zRange(conversationIndexKeys(this.prefix, accountId).index, 0, -1, { REV: true });
  }
}
