/** `npm run admin -- <command>`: see admin.ts. Reads the gateways' configuration (.env, environment). */
import { loadConfig, loadDotEnv } from '../config/config.js';
import { AccountStore } from '../store/account-store.js';
import { ConversationStore } from '../store/conversation-store.js';
import { PersonData } from '../store/person-data.js';
import { SessionStore, sessionStoreOptions } from '../store/session-store.js';
import { connectRedis, createRedisClient } from '../store/redis.js';
import { runAdmin } from './admin.js';

loadDotEnv();
const config = loadConfig();
const redis = await connectRedis(createRedisClient(config.redis), config.redis);
try {
  const accounts = new AccountStore(redis, { prefix: config.keyPrefix, sessionDays: config.auth.sessionDays });
  const conversations = new ConversationStore(redis, new SessionStore(redis, sessionStoreOptions(config)), config.keyPrefix);
  const personData = new PersonData(redis, accounts, conversations, config.keyPrefix);
  const output = { line: (text: string) => console.log(text), error: (text: string) => console.error(text) };
  process.exitCode = await runAdmin(process.argv.slice(2), { accounts, personData }, output, config.auth.inviteDays);
} finally {
  redis.destroy();
}
