import { EXPORT_ALL_URL, type ApiResult, type Person } from '../protocol/account-api.js';
import { accountApi } from '../protocol/browser.js';
import { ConfirmDialog } from './ConfirmDialog.js';
import { DangerMenuItem, Menu } from './Menu.js';
import { useConfirmedAction } from './useConfirmedAction.js';

interface AccountMenuProps {
  readonly person: Person;
  /** Signed out (or the account is gone): back to the sign-in screen with this notice. */
  readonly onSignedOut: (notice: string) => void;
  readonly onError: (detail: string) => void;
}

export const SIGNED_OUT = 'You are signed out.';
export const SIGNED_OUT_EVERYWHERE = 'You are signed out on every device.';
export const ACCOUNT_DELETED = 'Your account and all its conversations were deleted.';

export function AccountMenu({ person, onSignedOut, onError }: AccountMenuProps) {
  const deletion = useConfirmedAction<Person>(async () => {
    const result = await accountApi.deleteAccount();
    if (!result.ok) return result.detail;
    onSignedOut(ACCOUNT_DELETED);
    return undefined;
  });

  const run = async (action: () => Promise<ApiResult<null>>, notice: string) => {
    const result = await action();
    if (result.ok) onSignedOut(notice);
    else onError(result.detail);
  };

  return (
    <>
      <Menu
        label={`Account: ${person.displayName}`}
        placement="up"
        triggerClassName="account-button"
        trigger={
          <>
            <span className="avatar" aria-hidden="true">
              {Array.from(person.displayName)[0]?.toUpperCase() ?? '?'}
            </span>
            <span className="account-name">{person.displayName}</span>
          </>
        }
      >
        {(close) => (
          <>
            <p className="menu-note">
              Signed in as <strong>{person.username}</strong>
            </p>
            <a className="menu-item" href={EXPORT_ALL_URL} download onClick={close}>
              Export all my data
            </a>
            <button type="button" className="menu-item" onClick={() => void run(() => accountApi.signOut(), SIGNED_OUT)}>
              Sign out
            </button>
            <button type="button" className="menu-item" onClick={() => void run(() => accountApi.signOutEverywhere(), SIGNED_OUT_EVERYWHERE)}>
              Sign out everywhere
            </button>
            <DangerMenuItem close={close} onAsk={() => deletion.ask(person)}>
              Delete my account…
            </DangerMenuItem>
          </>
        )}
      </Menu>
      {deletion.subject === undefined ? null : (
        <ConfirmDialog title="Delete your account?" confirmLabel="Delete my account" {...deletion.dialog}>
          <p>
            Your account <strong>{person.username}</strong> and every conversation in it are deleted at once and for good. Export your data first if you want
            to keep a copy.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}
