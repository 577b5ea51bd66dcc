import { memo } from 'react';
import type { Turn } from '../protocol/chat-state.js';
import { formatPlace, formatWhen } from './format.js';
import { RetryIcon } from './icons.js';
import { Markdown } from './Markdown.js';

interface TurnViewProps {
  readonly turn: Turn;
  /** Unfinished turns before this one: > 0 means it waits in the queue. */
  readonly waitingBehind: number;
  readonly online: boolean;
  readonly onRetry: (key: string) => void;
}

function humanStatus(turn: Turn, waitingBehind: number, online: boolean): string | undefined {
  if (turn.status === 'sending') return online ? 'Sending…' : 'Waiting for connection';
  if (turn.status === 'queued' && turn.place !== undefined) return formatPlace(turn.place.position, turn.place.etaMs);
  if (turn.status === 'queued' && waitingBehind > 0) return 'Queued';
  return undefined;
}

export const TurnView = memo(function TurnView({ turn, waitingBehind, online, onRetry }: TurnViewProps) {
  const status = humanStatus(turn, waitingBehind, online);
  return (
    <article className="turn" data-status={turn.status} data-seq={turn.seq} aria-busy={turn.status === 'answering'}>
      <div className="human">
        <div className="human-bubble">
          <span className="sr-only">You: </span>
          {turn.textUnknown === true ? <em className="muted">Sent from another window</em> : <p className="human-text">{turn.text}</p>}
        </div>
        <div className="meta human-meta">
          {status === undefined ? null : <span className={`badge badge-${turn.status}`}>{status}</span>}
          {turn.sentAt === undefined ? null : <time dateTime={turn.sentAt}>{formatWhen(turn.sentAt)}</time>}
        </div>
      </div>
      <Answer turn={turn} waitingBehind={waitingBehind} onRetry={onRetry} />
    </article>
  );
});

function Answer({ turn, waitingBehind, onRetry }: Omit<TurnViewProps, 'online'>) {
  if (turn.status === 'error') return <TurnFailure turn={turn} onRetry={onRetry} />;
  if (turn.status === 'sending' || (turn.status === 'queued' && waitingBehind > 0)) return null;
  const answering = turn.status === 'queued' || turn.status === 'answering';
  const thinking = answering && turn.answer === '';
  return (
    <div className="bot">
      <span className="sr-only">Parley: </span>
      {thinking ? (
        <div className="thinking">
          <span className="sr-only">Thinking…</span>
          <span aria-hidden="true" />
          <span aria-hidden="true" />
          <span aria-hidden="true" />
        </div>
      ) : (
        <Markdown text={turn.answer} streaming={answering} />
      )}
      {turn.status === 'stopped' ? <div className="meta"><span className="badge badge-stopped">Stopped</span></div> : null}
      {answering && turn.stopRequested === true ? <div className="meta"><span className="badge">Stopping…</span></div> : null}
    </div>
  );
}

function TurnFailure({ turn, onRetry }: Pick<TurnViewProps, 'turn' | 'onRetry'>) {
  const title = turn.rejected === true ? 'Not sent' : 'No answer';
  return (
    <div className="failure" role="group" aria-label={title}>
      <p>
        <strong>{title}:</strong> {turn.error?.message ?? 'Something went wrong.'}
        {turn.error?.ref === undefined ? null : <span className="failure-ref"> (reference {turn.error.ref})</span>}
      </p>
      <button type="button" className="button button-small" onClick={() => onRetry(turn.key)}>
        <RetryIcon />
        Retry
      </button>
    </div>
  );
}
