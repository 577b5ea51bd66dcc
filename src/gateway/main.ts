/** `npm run gateway`: one gateway process. */
import { loadProcessConfig, runUntilSignalled } from '../shared/process.js';
import { startGateway } from './server.js';

const config = loadProcessConfig();
await runUntilSignalled('gateway', config, (logger) => startGateway(config, logger));
