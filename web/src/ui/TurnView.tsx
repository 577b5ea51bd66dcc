import { memo, useState, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import type { Turn } from '../protocol/chat-state.js';
import { formatPlace, formatWhen } from './format.js';
import { EditIcon, NextIcon, PrevIcon, RetryIcon } from './icons.js';
import { Markdown } from './Markdown.js';

export interface TurnActions {
  readonly onRetry: (key: string) => void;
  readonly onEdit: (seq: number, text: string) => void;
  readonly onRegenerate: (seq: number) => void;
  readonly onSwitch: (seq: number) => void;
}

interface TurnViewProps extends TurnActions {
  readonly turn: Turn;
  /** Unfinished turns before this one: > 0 means it waits in the queue. */
  readonly waitingBehind: number;
  readonly online: boolean;
  readonly versionIndex: number;
  readonly versionCount: number;
  readonly previousVersion: number | undefined;
  readonly nextVersion: number | undefined;
}

function humanStatus(turn: Turn, waitingBehind: number, online: boolean): string | undefined {
  if (turn.status === 'sending') return online ? 'Sending…' : 'Waiting for connection';
  if (turn.status === 'queued' && turn.place !== undefined) return formatPlace(turn.place.position, turn.place.etaMs);
  if (turn.status === 'queued' && waitingBehind > 0) return 'Queued';
  return undefined;
}

export const TurnView = memo(function TurnView(props: TurnViewProps) {
  const { turn, waitingBehind, online, onEdit } = props;
  const [editing, setEditing] = useState(false);
  const status = humanStatus(turn, waitingBehind, online);
  const editable = turn.seq !== undefined && turn.textUnknown !== true;
  return (
    <article className="turn" data-status={turn.status} data-seq={turn.seq} aria-busy={turn.status === 'answering'}>
      <div className="human">
        {editing && turn.seq !== undefined ? (
          <MessageEditor
            text={turn.text}
            onCancel={() => setEditing(false)}
            onSave={(text) => {
              setEditing(false);
              if (turn.seq !== undefined && text !== turn.text) onEdit(turn.seq, text);
            }}
          />
        ) : (
          <div className="human-bubble">
            <span className="sr-only">You: </span>
            {turn.textUnknown === true ? <em className="muted">Sent from another window</em> : <p className="human-text">{turn.text}</p>}
          </div>
        )}
        <div className="meta human-meta">
          {status === undefined ? null : <span className={`badge badge-${turn.status}`}>{status}</span>}
          {turn.sentAt === undefined ? null : <time dateTime={turn.sentAt}>{formatWhen(turn.sentAt)}</time>}
          <VersionSwitcher {...props} />
          {editable && !editing ? (
            <button type="button" className="icon-button" onClick={() => setEditing(true)} aria-label="Edit message" title="Edit message">
              <EditIcon />
            </button>
          ) : null}
        </div>
      </div>
      <Answer {...props} />
    </article>
  );
});

/** "‹ 2/3 ›": the versions of this turn; choosing one shows its branch. */
function VersionSwitcher({ turn, online, versionIndex, versionCount, previousVersion, nextVersion, onSwitch }: TurnViewProps) {
  if (versionCount < 2) return null;
  const disabled = !online || turn.seq === undefined;
  return (
    <div className="versions" role="group" aria-label="Versions of this message">
      <VersionStep label="Previous version" seq={previousVersion} disabled={disabled} onSwitch={onSwitch}>
        <PrevIcon />
      </VersionStep>
      <span className="versions-count" aria-live="polite">
        <span className="sr-only">Version </span>
        {versionIndex + 1}/{versionCount}
      </span>
      <VersionStep label="Next version" seq={nextVersion} disabled={disabled} onSwitch={onSwitch}>
        <NextIcon />
      </VersionStep>
    </div>
  );
}

interface VersionStepProps {
  readonly label: string;
  /** The version this button goes to; undefined at either end. */
  readonly seq: number | undefined;
  readonly disabled: boolean;
  readonly onSwitch: (seq: number) => void;
  readonly children: ReactNode;
}

function VersionStep({ label, seq, disabled, onSwitch, children }: VersionStepProps) {
  return (
    <button type="button" className="icon-button" aria-label={label} disabled={disabled || seq === undefined} onClick={() => seq !== undefined && onSwitch(seq)}>
      {children}
    </button>
  );
}

/** Edits a sent message in place: Enter or Save sends it as a new version, Escape or Cancel keeps the old one. */
function MessageEditor({ text, onSave, onCancel }: { readonly text: string; readonly onSave: (text: string) => void; readonly onCancel: () => void }) {
  const [draft, setDraft] = useState(text);
  const save = () => {
    if (draft.trim() !== '') onSave(draft);
  };
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    save();
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      onCancel();
    } else if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      save();
    }
  };
  return (
    <form className="editor entry-card" onSubmit={onSubmit}>
      <textarea
        className="editor-input entry-field"
        aria-label="Edit your message"
        value={draft}
        autoFocus
        onFocus={(event) => event.currentTarget.setSelectionRange(draft.length, draft.length)}
        onChange={(event) => setDraft(event.target.value)}
        onKeyDown={onKeyDown}
      />
      <div className="editor-actions">
        <button type="button" className="button button-small" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="button button-small button-primary" disabled={draft.trim() === ''}>
          Save
        </button>
      </div>
    </form>
  );
}

function Answer({ turn, waitingBehind, onRetry, onRegenerate }: TurnViewProps) {
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
      {answering ? (
        turn.stopRequested === true ? (
          <div className="meta">
            <span className="badge">Stopping…</span>
          </div>
        ) : null
      ) : (
        <div className="meta bot-meta">
          {turn.status === 'stopped' ? <span className="badge badge-stopped">Stopped</span> : null}
          {turn.seq !== undefined && turn.textUnknown !== true ? (
            <button type="button" className="icon-button" onClick={() => turn.seq !== undefined && onRegenerate(turn.seq)} aria-label="Regenerate answer" title="Regenerate answer">
              <RetryIcon />
            </button>
          ) : null}
        </div>
      )}
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
