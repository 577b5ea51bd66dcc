/** `npm run admin -- <command>`: see admin.ts. Reads the gateways' configuration (.env, environment). */
import { loadConfig, loadDotEnv } from '../config/config.js';
import { AccountStore } from '../store/account-store.js';
import { connectRedis, createRedisClient } from '../store/redis.js';
import { runAdmin } from './admin.js';

loadDotEnv();
const config = loadConfig();
const redis = await connectRedis(createRedisClient(config.redis), config.redis);
try {
  const accounts = new AccountStore(redis, { prefix: config.keyPrefix, sessionDays: config.auth.sessionDays });
  process.exitCode = await runAdmin(process.argv.slice(2), accounts, { line: (text) => console.log(text), error: (text) => console.error(text) }, config.auth.inviteDays);
} finally {
  redis.destroy();
}
