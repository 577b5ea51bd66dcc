import { useCallback, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { siblingGroups, siblingsOf } from '../protocol/branches.js';
import { isUnfinished, visibleTurns, type ChatState } from '../protocol/chat-state.js';
import { DownIcon } from './icons.js';
import { TurnView, type TurnActions } from './TurnView.js';

/** Within this many pixels of the bottom the view counts as "at the bottom" and follows. */
const PIN_SLACK_PX = 48;

interface MessageListProps {
  /** Every branch of the conversation; the one shown is drawn. */
  readonly chat: ChatState;
  readonly online: boolean;
  readonly name: string;
  readonly actions: TurnActions;
}

export function MessageList({ chat, online, name, actions }: MessageListProps) {
  const turns = useMemo(() => visibleTurns(chat), [chat]);
  const versions = useMemo(() => siblingGroups(chat.turns), [chat.turns]);
  const scroller = useRef<HTMLElement>(null);
  // A ref, not state: it changes on every scroll event and must not re-render anything.
  const pinned = useRef(true);
  const [behind, setBehind] = useState(false);

  const onScroll = useCallback(() => {
    const element = scroller.current;
    if (element === null) return;
    pinned.current = element.scrollHeight - element.scrollTop - element.clientHeight <= PIN_SLACK_PX;
    if (pinned.current) setBehind(false);
  }, []);

  const shownTurns = useRef(turns.length);
  useLayoutEffect(() => {
    const element = scroller.current;
    if (element === null) return;
    // The user's own new message brings the view back down, wherever they had scrolled.
    if (turns.length > shownTurns.current && turns.at(-1)?.status === 'sending') pinned.current = true;
    shownTurns.current = turns.length;
    if (pinned.current) {
      element.scrollTop = element.scrollHeight;
      setBehind(false);
    } else {
      setBehind(true);
    }
  }, [turns]);

  const jumpToLatest = () => {
    const element = scroller.current;
    if (element === null) return;
    pinned.current = true;
    setBehind(false);
    // At once, not smoothly: the scroll events of an animation would read as the user scrolling
    // up and unpin the view while the answer keeps growing.
    element.scrollTop = element.scrollHeight;
  };

  let unfinishedBefore = 0;
  return (
    <main className="messages" ref={scroller} onScroll={onScroll} tabIndex={-1}>
      <div className="messages-inner" role="log" aria-live="polite" aria-label="Conversation">
        {turns.length === 0 ? <EmptyState name={name} /> : null}
        {turns.map((turn) => {
          const waitingBehind = unfinishedBefore;
          if (isUnfinished(turn)) unfinishedBefore += 1;
          const { all: siblings, index } = siblingsOf(chat.turns, turn, versions);
          return (
            <TurnView
              key={turn.key}
              turn={turn}
              waitingBehind={waitingBehind}
              online={online}
              versionIndex={index}
              versionCount={siblings.length}
              previousVersion={siblings[index - 1]?.seq}
              nextVersion={siblings[index + 1]?.seq}
              {...actions}
            />
          );
        })}
      </div>
      {behind ? (
        <button type="button" className="jump button button-small" onClick={jumpToLatest}>
          <DownIcon />
          Latest
        </button>
      ) : null}
    </main>
  );
}

export function EmptyState({ name }: { readonly name: string }) {
  return (
    <div className="empty">
      <p className="empty-title">Hello{name === '' ? '' : `, ${name}`}.</p>
      <p className="muted">Ask anything. Answers stream in as they are written; you can keep typing while Parley answers.</p>
    </div>
  );
}
