import { useState } from 'react';
import type { ConfirmDialogControls } from './ConfirmDialog.js';

export interface ConfirmedAction<T> {
  /** What the dialog asks about; undefined while it is closed. */
  readonly subject: T | undefined;
  /** Opens the dialog about this subject, without the error of an earlier attempt. */
  readonly ask: (subject: T) => void;
  /** Spread into the ConfirmDialog. */
  readonly dialog: ConfirmDialogControls;
}

/**
 * An action that cannot be undone, asked about in a ConfirmDialog: busy while it runs; when it
 * fails, the dialog stays open with the reason so that the person can try again.
 * @param action resolves undefined when it succeeded, the reason (the server's detail) when not.
 */
export function useConfirmedAction<T extends object>(action: (subject: T) => Promise<string | undefined>): ConfirmedAction<T> {
  const [subject, setSubject] = useState<T>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  const confirm = async () => {
    if (subject === undefined) return;
    setBusy(true);
    const failure = await action(subject);
    setBusy(false);
    setError(failure);
    if (failure === undefined) setSubject(undefined);
  };

  return {
    subject,
    ask: (next) => {
      setError(undefined);
      setSubject(next);
    },
    dialog: { busy, error, onConfirm: () => void confirm(), onCancel: () => setSubject(undefined) },
  };
}
