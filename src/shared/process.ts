/**
 * Shared start-up of the gateway and worker processes: configuration (with a clear message and
 * exit code 78 when it is invalid), logging, and a graceful stop on SIGTERM/SIGINT.
 */
import { ConfigError } from '../contracts/errors.js';
import { loadConfig, loadDotEnv, type Config } from '../config/config.js';
import { createLogger, safeError, type Logger } from './logger.js';

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

/**
 * The last resort: an exception nothing caught is logged (redacted: Node's own crash trace would
 * print an offending URL, token included) and the process keeps serving. Every input path has its
 * own handler; reaching this one is a bug to fix, not a reason to drop every user's connection.
 */
export function keepServingOnUncaught(name: string, logger: Logger): void {
  process.on('uncaughtException', (error) => logger.error({ err: safeError(error) }, `${name}: uncaught exception (a bug); still serving`));
  process.on('unhandledRejection', (reason) => logger.error({ err: safeError(reason) }, `${name}: unhandled rejection (a bug); still serving`));
}

/** Runs `start`, then stops it gracefully on the first SIGTERM/SIGINT; a second signal forces exit. */
export async function runUntilSignalled(name: string, config: Config, start: (logger: Logger) => Promise<{ stop(): Promise<void> }>): Promise<void> {
  const logger = createLogger(name, config.logLevel, config.logFormat);
  keepServingOnUncaught(name, logger);
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
