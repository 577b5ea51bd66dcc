import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { Conversation } from '../protocol/account-api.js';
import { accountApi } from '../protocol/browser.js';
import { ConfirmDialog } from './ConfirmDialog.js';
import { formatWhen } from './format.js';
import { CloseIcon, MoreIcon, PlusIcon, SearchIcon } from './icons.js';
import { DangerMenuItem, Menu } from './Menu.js';
import { useConfirmedAction } from './useConfirmedAction.js';
import type { ConversationList } from './useConversations.js';

export const UNTITLED = 'New conversation';

interface SidebarProps {
  readonly list: ConversationList;
  /** The conversation open; undefined while a new one is being written. */
  readonly selected: string | undefined;
  /** Phones: the sidebar is shown over the conversation. */
  readonly open: boolean;
  readonly onSelect: (id: string) => void;
  readonly onNew: () => void;
  readonly onClose: () => void;
  readonly onRename: (id: string, title: string) => Promise<string | undefined>;
  readonly onDelete: (id: string) => Promise<string | undefined>;
  /** The account menu, at the foot of the sidebar. */
  readonly account: ReactNode;
}

export function Sidebar({ list, selected, open, onSelect, onNew, onClose, onRename, onDelete, account }: SidebarProps) {
  const newButton = useRef<HTMLButtonElement>(null);
  const deletion = useConfirmedAction((conversation: Conversation) => onDelete(conversation.id));

  useEffect(() => {
    // Opened on a phone: the keyboard starts inside it.
    if (open) newButton.current?.focus();
  }, [open]);

  const searching = list.query.trim() !== '';
  return (
    <aside id="sidebar" className="sidebar" aria-label="Conversations">
      <div className="sidebar-head">
        <div className="brand" aria-hidden="true">
          P
        </div>
        <span className="sidebar-title">Parley</span>
        <button type="button" className="icon-button sidebar-close" onClick={onClose} aria-label="Close the conversation list">
          <CloseIcon />
        </button>
      </div>
      <button ref={newButton} type="button" className="button new-conversation" onClick={onNew} aria-current={selected === undefined ? 'page' : undefined}>
        <PlusIcon />
        New conversation
      </button>
      <div className="search" role="search">
        <SearchIcon />
        <label htmlFor="conversation-search" className="sr-only">
          Search conversations
        </label>
        <input
          id="conversation-search"
          type="search"
          placeholder="Search"
          autoComplete="off"
          value={list.query}
          onChange={(event) => list.setQuery(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Escape' && list.query !== '') {
              event.stopPropagation();
              list.setQuery('');
            }
          }}
        />
      </div>
      <nav className="conversation-nav" aria-label="Your conversations" aria-busy={list.loading}>
        {list.error === undefined ? null : (
          <p className="sidebar-error" role="alert">
            {list.error}{' '}
            <button type="button" className="link-button" onClick={list.reload}>
              Try again
            </button>
          </p>
        )}
        {list.items.length === 0 && !list.loading && list.error === undefined ? (
          <p className="sidebar-empty muted">{searching ? `No conversation matches “${list.query.trim()}”.` : 'Your conversations will be listed here.'}</p>
        ) : null}
        <ul className="conversation-list">
          {list.items.map((conversation) => (
            <ConversationItem
              key={conversation.id}
              conversation={conversation}
              selected={conversation.id === selected}
              onSelect={onSelect}
              onRename={onRename}
              onAskDelete={deletion.ask}
            />
          ))}
        </ul>
        {list.hasMore ? (
          <button type="button" className="button button-small show-more" onClick={list.loadMore} disabled={list.loading}>
            Show older
          </button>
        ) : null}
      </nav>
      <div className="sidebar-foot">{account}</div>
      {deletion.subject === undefined ? null : (
        <ConfirmDialog title="Delete this conversation?" confirmLabel="Delete" {...deletion.dialog}>
          <p>
            “{deletion.subject.title || UNTITLED}” and all its versions will be deleted for good. Export it first if you want to keep a copy.
          </p>
        </ConfirmDialog>
      )}
    </aside>
  );
}

interface ConversationItemProps {
  readonly conversation: Conversation;
  readonly selected: boolean;
  readonly onSelect: (id: string) => void;
  readonly onRename: (id: string, title: string) => Promise<string | undefined>;
  readonly onAskDelete: (conversation: Conversation) => void;
}

function ConversationItem({ conversation, selected, onSelect, onRename, onAskDelete }: ConversationItemProps) {
  const [renaming, setRenaming] = useState(false);
  const [error, setError] = useState<string>();
  const title = conversation.title || UNTITLED;
  const openButton = useRef<HTMLButtonElement>(null);
  const wasRenaming = useRef(false);
  useEffect(() => {
    // The field goes away after a rename: the keyboard continues from the conversation's button.
    if (wasRenaming.current && !renaming) openButton.current?.focus();
    wasRenaming.current = renaming;
  }, [renaming]);
  return (
    <li className="conversation-item" data-selected={selected}>
      {renaming ? (
        <RenameField
          title={conversation.title}
          error={error}
          onDone={async (next) => {
            const failure = next === undefined || next === conversation.title ? undefined : await onRename(conversation.id, next);
            setError(failure);
            if (failure === undefined) setRenaming(false);
            return failure === undefined;
          }}
        />
      ) : (
        <button ref={openButton} type="button" className="conversation-open" onClick={() => onSelect(conversation.id)} aria-current={selected ? 'page' : undefined}>
          <span className="conversation-title">{title}</span>
          {conversation.updatedAt === '' ? null : <time dateTime={conversation.updatedAt}>{formatWhen(conversation.updatedAt)}</time>}
        </button>
      )}
      {renaming ? null : (
        <Menu label={`Actions for ${title}`} trigger={<MoreIcon />} triggerClassName="icon-button conversation-actions">
          {(close) => (
            <>
              <button type="button" className="menu-item" onClick={() => setRenaming(true)}>
                Rename
              </button>
              <a className="menu-item" href={accountApi.exportUrl(conversation.id, 'markdown')} download onClick={close}>
                Export Markdown
              </a>
              <a className="menu-item" href={accountApi.exportUrl(conversation.id, 'json')} download onClick={close}>
                Export JSON
              </a>
              <DangerMenuItem close={close} onAsk={() => onAskDelete(conversation)}>
                Delete…
              </DangerMenuItem>
            </>
          )}
        </Menu>
      )}
    </li>
  );
}

/** The title in place: Enter saves, Escape keeps the old one; leaving the field saves too. */
interface RenameFieldProps {
  readonly title: string;
  readonly error: string | undefined;
  /** undefined: keep the old title. Resolves true when the field is done (false: the rename failed, try again). */
  readonly onDone: (title: string | undefined) => Promise<boolean>;
}

function RenameField({ title, error, onDone }: RenameFieldProps) {
  const [draft, setDraft] = useState(title);
  // Enter, then the blur of the field going away, must not save twice.
  const finishing = useRef(false);
  const finish = (value: string | undefined) => {
    if (finishing.current) return;
    finishing.current = true;
    const trimmed = value?.trim();
    void onDone(trimmed === '' ? undefined : trimmed).then((done) => {
      if (!done) finishing.current = false;
    });
  };
  return (
    <div className="rename">
      <input
        className="rename-input"
        aria-label="Conversation title"
        aria-invalid={error !== undefined}
        value={draft}
        autoFocus
        onFocus={(event) => event.currentTarget.select()}
        onChange={(event) => setDraft(event.target.value)}
        onBlur={() => finish(draft)}
        onKeyDown={(event) => {
          if (event.key === 'Enter') {
            event.preventDefault();
            finish(draft);
          } else if (event.key === 'Escape') {
            event.preventDefault();
            event.stopPropagation();
            finish(undefined);
          }
        }}
      />
      {error === undefined ? null : (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
