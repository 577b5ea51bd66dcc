import { useEffect, useId, useRef, type ReactNode } from 'react';

/** The state of the action asked about (see useConfirmedAction). */
export interface ConfirmDialogControls {
  readonly busy: boolean;
  /** Why the last attempt failed (the server's detail). */
  readonly error: string | undefined;
  readonly onConfirm: () => void;
  readonly onCancel: () => void;
}

interface ConfirmDialogProps extends ConfirmDialogControls {
  readonly title: string;
  readonly children: ReactNode;
  readonly confirmLabel: string;
}

/**
 * Asks before something that cannot be undone. A modal <dialog>: the page behind is inert, the
 * focus starts on Cancel (the safe choice), Escape cancels.
 */
export function ConfirmDialog({ title, children, confirmLabel, busy, error, onConfirm, onCancel }: ConfirmDialogProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const element = dialog.current;
    if (element !== null && !element.open) element.showModal();
    return () => element?.close();
  }, []);
  return (
    <dialog
      ref={dialog}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(event) => {
        event.preventDefault();
        onCancel();
      }}
      onKeyDown={(event) => {
        // Escape cancels the dialog only, not the sidebar it was opened from.
        if (event.key === 'Escape') event.stopPropagation();
      }}
    >
      <h2 id={titleId} className="dialog-title">
        {title}
      </h2>
      <div className="dialog-body">{children}</div>
      {error === undefined ? null : (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      <div className="dialog-actions">
        <button type="button" className="button" onClick={onCancel} autoFocus>
          Cancel
        </button>
        <button type="button" className="button button-danger" onClick={onConfirm} disabled={busy}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
