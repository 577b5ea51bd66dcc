/**
 * Shared start-up of the gateway and worker processes: configuration (with a clear message and
 * exit code 78 when it is invalid), logging, and a graceful stop on SIGTERM/SIGINT.
 */
import { ConfigError } from '../contracts/errors.js';
import { loadConfig, loadDotEnv, type Config } from '../config/config.js';
import { createLogger, type Logger } from './logger.js';

/** EX_CONFIG from sysexits.h: the configuration is wrong, restarting will not help. */
const EXIT_CONFIG = 78;

export function loadProcessConfig(): Config {
  try {
    loadDotEnv();
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
}

/** Runs `start`, then stops it gracefully on the first SIGTERM/SIGINT; a second signal forces exit. */
export async function runUntilSignalled(name: string, config: Config, start: (logger: Logger) => Promise<{ stop(): Promise<void> }>): Promise<void> {
  const logger = createLogger(name, config.logLevel, config.logFormat);
  let handle: { stop(): Promise<void> };
  try {
    handle = await start(logger);
  } catch (error) {
    logger.fatal({ err: error }, `${name} could not start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, `${name} stopping`);
    handle.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, `${name} did not stop cleanly`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
