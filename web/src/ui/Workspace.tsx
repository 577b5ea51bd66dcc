import { useCallback, useEffect, useRef, useState } from 'react';
import type { Person } from '../protocol/account-api.js';
import { accountApi } from '../protocol/browser.js';
import { loadOpenConversation, saveOpenConversation } from '../storage.js';
import { AccountMenu } from './AccountMenu.js';
import { ConversationPane, NewConversationPane } from './ConversationPane.js';
import { CloseIcon, MenuIcon } from './icons.js';
import { Sidebar } from './Sidebar.js';
import { useConversations } from './useConversations.js';

const GONE_NOTICE = 'That conversation is no longer there: it was deleted, perhaps in another window.';

interface WorkspaceProps {
  readonly person: Person;
  readonly onSignedOut: (notice: string) => void;
}

/** A signed-in person: their conversations in the sidebar, the one open beside it. */
export function Workspace({ person, onSignedOut }: WorkspaceProps) {
  const list = useConversations();
  const { reload, patch } = list;
  const [selected, setSelected] = useState<string | undefined>(loadOpenConversation);
  const [first, setFirst] = useState<{ readonly id: string; readonly text: string }>();
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const [banner, setBanner] = useState<string>();
  const toggle = useRef<HTMLButtonElement>(null);

  const open = useCallback((id: string | undefined) => {
    setSelected(id);
    saveOpenConversation(id);
    setSidebarOpen(false);
  }, []);

  const closeSidebar = useCallback(() => {
    setSidebarOpen(false);
    toggle.current?.focus();
  }, []);

  useEffect(() => {
    if (!sidebarOpen) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') closeSidebar();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [sidebarOpen, closeSidebar]);

  const onRename = async (id: string, title: string) => {
    const result = await accountApi.renameConversation(id, title);
    if (!result.ok) return result.detail;
    patch(id, { title });
    reload();
    return undefined;
  };

  const onDelete = async (id: string) => {
    const result = await accountApi.deleteConversation(id);
    if (!result.ok) return result.detail;
    patch(id, null);
    if (selected === id) open(undefined);
    reload();
    return undefined;
  };

  const onStart = async (text: string) => {
    const result = await accountApi.createConversation();
    if (!result.ok) {
      setBanner(`The conversation could not be started: ${result.detail}`);
      return false;
    }
    setBanner(undefined);
    setFirst({ id: result.value.id, text });
    open(result.value.id);
    reload();
    return true;
  };

  const onGone = useCallback(() => {
    patch(selected ?? '', null);
    open(undefined);
    setBanner(GONE_NOTICE);
  }, [patch, selected, open]);

  const onFirstMessageTaken = useCallback(() => setFirst(undefined), []);

  const sidebarToggle = (
    <button
      ref={toggle}
      type="button"
      className="icon-button sidebar-toggle"
      aria-label="Conversations"
      aria-expanded={sidebarOpen}
      aria-controls="sidebar"
      onClick={() => setSidebarOpen((value) => !value)}
    >
      <MenuIcon />
    </button>
  );

  return (
    <div className="workspace" data-sidebar={sidebarOpen ? 'open' : 'closed'}>
      <Sidebar
        list={list}
        selected={selected}
        open={sidebarOpen}
        onSelect={open}
        onNew={() => open(undefined)}
        onClose={closeSidebar}
        onRename={onRename}
        onDelete={onDelete}
        account={<AccountMenu person={person} onSignedOut={onSignedOut} onError={setBanner} />}
      />
      {sidebarOpen ? <div className="scrim" aria-hidden="true" onClick={closeSidebar} /> : null}
      <div className="workspace-main">
        {banner === undefined ? null : (
          <div className="banner" role="alert">
            <span>{banner}</span>
            <button type="button" className="icon-button" aria-label="Dismiss" onClick={() => setBanner(undefined)}>
              <CloseIcon />
            </button>
          </div>
        )}
        {selected === undefined ? (
          <NewConversationPane name={person.displayName} onStart={onStart} sidebarToggle={sidebarToggle} />
        ) : (
          <ConversationPane
            key={selected}
            id={selected}
            title={list.items.find((item) => item.id === selected)?.title}
            name={person.displayName}
            firstMessage={first?.id === selected ? first.text : undefined}
            onFirstMessageTaken={onFirstMessageTaken}
            onActivity={reload}
            onGone={onGone}
            sidebarToggle={sidebarToggle}
          />
        )}
      </div>
    </div>
  );
}
