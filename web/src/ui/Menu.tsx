import { useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';

interface MenuProps {
  /** Names the button and the panel for screen readers ("Actions for Trip to Lisbon"). */
  readonly label: string;
  readonly trigger: ReactNode;
  readonly triggerClassName: string;
  /** Opens upwards (at the bottom of the sidebar) or downwards. */
  readonly placement?: 'up' | 'down';
  /** The items; `close` hands the focus back to the button (call it before opening a dialog). */
  readonly children: (close: () => void) => ReactNode;
}

const ITEMS = '.menu-item:not(:disabled)';

/**
 * A button that shows a short list of actions (a disclosure): arrow keys move between them,
 * Escape or a click elsewhere closes it, and the focus goes back to the button.
 */
export function Menu({ label, trigger, triggerClassName, placement = 'down', children }: MenuProps) {
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  const panelId = useId();

  useEffect(() => {
    if (!open) return;
    root.current?.querySelector<HTMLElement>(ITEMS)?.focus();
    const onPointerDown = (event: PointerEvent) => {
      if (!(event.target instanceof Node) || root.current?.contains(event.target) !== true) setOpen(false);
    };
    document.addEventListener('pointerdown', onPointerDown);
    return () => document.removeEventListener('pointerdown', onPointerDown);
  }, [open]);

  const close = () => {
    setOpen(false);
    button.current?.focus();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    if (!open) return;
    if (event.key === 'Escape') {
      // Only this menu closes, not the sidebar or dialog around it.
      event.stopPropagation();
      close();
      return;
    }
    if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
    event.preventDefault();
    const items = [...(root.current?.querySelectorAll<HTMLElement>(ITEMS) ?? [])];
    const at = items.indexOf(document.activeElement as HTMLElement);
    const step = event.key === 'ArrowDown' ? 1 : -1;
    items[(at + step + items.length) % items.length]?.focus();
  };

  return (
    <div
      className="menu"
      ref={root}
      onKeyDown={onKeyDown}
      onBlur={(event) => {
        // Tabbing out of the menu closes it.
        if (open && !(event.relatedTarget instanceof Node && root.current?.contains(event.relatedTarget))) setOpen(false);
      }}
    >
      <button
        ref={button}
        type="button"
        className={triggerClassName}
        aria-label={label}
        aria-expanded={open}
        aria-controls={open ? panelId : undefined}
        onClick={() => setOpen((value) => !value)}
      >
        {trigger}
      </button>
      {open ? (
        <div id={panelId} className="menu-panel" data-placement={placement} role="group" aria-label={label}>
          {children(close)}
        </div>
      ) : null}
    </div>
  );
}

interface DangerMenuItemProps {
  /** The menu's `close`: the focus goes back to the menu's button, where the dialog returns it. */
  readonly close: () => void;
  /** Opens the dialog that asks before the action. */
  readonly onAsk: () => void;
  readonly children: ReactNode;
}

/** An item for something that cannot be undone: the menu closes and a dialog asks first. */
export function DangerMenuItem({ close, onAsk, children }: DangerMenuItemProps) {
  return (
    <button
      type="button"
      className="menu-item menu-item-danger"
      onClick={() => {
        close();
        onAsk();
      }}
    >
      {children}
    </button>
  );
}
