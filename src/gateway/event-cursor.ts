/**
 * Delivers a session's events (answers and branch changes) to one socket in order, each exactly
 * once. Live events arrive by pub/sub carrying the id of the event before them; when that is not
 * the last id this socket saw (a missed message, a resume, a late subscription) the cursor reads the gap from the
 * session's event stream first. All work runs one step at a time, so nothing overtakes.
 */
import type { StoredSessionEvent } from '../contracts/protocol.js';
import type { LiveEvent } from '../contracts/records.js';
import { compareEventIds } from '../contracts/event-ids.js';

export type FetchAfter = (afterId: string) => Promise<{ events: StoredSessionEvent[]; complete: boolean }>;

export interface CursorSink {
  deliver(event: StoredSessionEvent): void | Promise<void>;
  /** Events the client asked for are no longer retained. */
  reset(): void;
  failed(error: unknown): void;
}

const PAGE = 1000;

export class EventCursor {
  private chain: Promise<void> = Promise.resolve();
  /**
   * Set after a reset: nothing more is forwarded until the client resumes from a retained id
   * (forwarding would leave a gap; answering every later event with another reset would make
   * the client reload over and over).
   */
  private parked = false;

  constructor(
    private lastId: string,
    private readonly fetchAfter: FetchAfter,
    private readonly sink: CursorSink,
  ) {}

  offer(live: LiveEvent): void {
    this.enqueue(async () => {
      if (this.parked || compareEventIds(live.eventId, this.lastId) <= 0) return;
      if (live.prev === this.lastId) await this.deliver({ ...live.event, eventId: live.eventId });
      else await this.readGap();
    });
  }

  /**
   * Re-positions the cursor after the client's last seen event and sends what follows. `confirm`
   * runs in turn with deliveries (live events that arrive meanwhile wait behind it): it checks the
   * resume point and tells the client where the replay starts, or refuses it (returns false).
   * Settles once the replay has been sent.
   */
  resume(afterId: string, confirm: () => Promise<boolean>): Promise<void> {
    return this.enqueue(async () => {
      if (!(await confirm())) return;
      this.parked = false;
      // "0-0" (or "00-0") is the same position as "0": the start of the retained events.
      this.lastId = compareEventIds(afterId, '0') === 0 ? '0' : afterId;
      await this.readGap();
    });
  }

  /** Reads whatever came after the last delivered event (after a pub/sub outage). */
  catchUp(): void {
    this.enqueue(() => this.readGap());
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(step).catch((error: unknown) => this.sink.failed(error));
    return this.chain;
  }

  private async readGap(): Promise<void> {
    for (;;) {
      const { events, complete } = await this.fetchAfter(this.lastId);
      if (!complete) {
        this.parked = true;
        this.sink.reset();
        return;
      }
      for (const event of events) await this.deliver(event);
      if (events.length < PAGE) return;
    }
  }

  private async deliver(event: StoredSessionEvent): Promise<void> {
    if (compareEventIds(event.eventId, this.lastId) <= 0) return;
    this.lastId = event.eventId;
    await this.sink.deliver(event);
  }
}
