// `npm run test:fuzz`: the gateway fuzz suite at full size (FUZZ_SIZE, default 2000 rounds),
// seeded by FUZZ_SEED (default 9). `npm test` runs the same suite with 40 rounds.
import { spawnSync } from 'node:child_process';

const env = { ...process.env, FUZZ_SIZE: process.env.FUZZ_SIZE ?? '2000', FUZZ_SEED: process.env.FUZZ_SEED ?? '9' };
const result = spawnSync(process.execPath, ['scripts/run-tests.mjs', 'test', 'gateway-fuzz'], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
