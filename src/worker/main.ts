/** `npm run worker`: one worker process. */
import { createProvider } from '../providers/select.js';
import { loadProcessConfig, runUntilSignalled } from '../shared/process.js';
import { startWorker } from './worker.js';

const config = loadProcessConfig();
await runUntilSignalled('worker', config, async (logger) => startWorker(config, await createProvider(config.model, logger), logger));
