/**
 * Watches whether this gateway's Redis answers, with a deadline, so that a stalled or
 * unreachable Redis is reported (503 on /healthz, a `degraded` status frame to streaming
 * clients) instead of leaving everyone waiting in silence.
 */
import type { ServiceState } from '../contracts/protocol.js';
import { PING_DEADLINE_MS, withDeadline } from '../shared/deadline.js';
import type { Logger } from '../shared/logger.js';

const PROBE_INTERVAL_MS = 1000;

export class RedisHealth {
  private current: ServiceState = 'ok';
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly ping: () => Promise<unknown>,
    private readonly onChange: (state: ServiceState) => void,
    private readonly logger: Logger,
  ) {}

  get state(): ServiceState {
    return this.current;
  }

  /** Probes every second (each probe waits for the one before), until stop(). */
  start(): void {
    const probe = () => {
      void this.check().then(() => {
        if (!this.stopped) this.timer = setTimeout(probe, PROBE_INTERVAL_MS).unref();
      });
    };
    this.timer = setTimeout(probe, PROBE_INTERVAL_MS).unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** True when Redis answered a PING within the deadline; updates the state either way. */
  async check(): Promise<boolean> {
    try {
      await withDeadline(this.ping(), PING_DEADLINE_MS);
      this.set('ok');
      return true;
    } catch {
      this.set('degraded');
      return false;
    }
  }

  private set(state: ServiceState): void {
    if (state === this.current) return;
    this.current = state;
    if (state === 'degraded') this.logger.warn(`Redis did not answer within ${PING_DEADLINE_MS} ms; the service is degraded`);
    else this.logger.info('Redis answers again; the service is back');
    this.onChange(state);
  }
}
