import type { ConnectionStatus, SessionInfo } from '../protocol/chat-client.js';
import { formatWhen } from './format.js';
import { PlusIcon } from './icons.js';

interface ChatHeaderProps {
  readonly session: SessionInfo | undefined;
  readonly connection: ConnectionStatus;
  readonly failures: number;
  readonly startingNewChat: boolean;
  readonly onNewChat: () => void;
  readonly onReconnect: () => void;
  readonly onSignIn: (() => void) | undefined;
}

/** After this many failed attempts in a row, say plainly that we are offline. */
const OFFLINE_AFTER = 3;

function connectionLabel(connection: ConnectionStatus, failures: number): string {
  if (connection === 'online') return 'Connected';
  if (connection === 'connecting') return 'Connecting…';
  if (connection === 'degraded') return 'Service degraded, answers may be delayed…';
  return failures >= OFFLINE_AFTER ? 'Offline, retrying…' : 'Reconnecting…';
}

interface ConnectionIndicatorProps {
  readonly connection: ConnectionStatus;
  readonly failures: number;
  readonly onReconnect: () => void;
}

export function ConnectionIndicator({ connection, failures, onReconnect }: ConnectionIndicatorProps) {
  return (
    <div className="connection" data-connection={connection} role="status">
      <span className="dot" aria-hidden="true" />
      <span className="connection-label">{connectionLabel(connection, failures)}</span>
      {connection === 'reconnecting' ? (
        <button type="button" className="link-button" onClick={onReconnect}>
          Retry now
        </button>
      ) : null}
    </div>
  );
}

export function ChatHeader({ session, connection, failures, startingNewChat, onNewChat, onReconnect, onSignIn }: ChatHeaderProps) {
  return (
    <header className="chat-header">
      <div className="header-inner">
        <div className="brand" aria-hidden="true">
          P
        </div>
        <div className="session-info">
          <h1 className="session-name">{session?.name ?? 'Parley'}</h1>
          {session?.sessionStart ? (
            <p className="session-start">
              Started <time dateTime={session.sessionStart}>{formatWhen(session.sessionStart)}</time>
            </p>
          ) : null}
        </div>
        <ConnectionIndicator connection={connection} failures={failures} onReconnect={onReconnect} />
        {onSignIn === undefined ? null : (
          <button type="button" className="button sign-in-link" onClick={onSignIn}>
            Sign in
          </button>
        )}
        <button type="button" className="button new-chat" onClick={onNewChat} disabled={startingNewChat} aria-label="New chat">
          <PlusIcon />
          <span className="button-text">New chat</span>
        </button>
      </div>
    </header>
  );
}
