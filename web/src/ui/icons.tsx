/** Inline icons: decorative (aria-hidden); every button carries its own text or label. */
interface IconProps {
  readonly path: string;
}

function Icon({ path }: IconProps) {
  return (
    <svg className="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false">
      <path d={path} fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

export const SendIcon = () => <Icon path="M5 12h14M13 6l6 6-6 6" />;
export const StopIcon = () => <Icon path="M7 7h10v10H7z" />;
export const PlusIcon = () => <Icon path="M12 5v14M5 12h14" />;
export const DownIcon = () => <Icon path="M12 5v14M6 13l6 6 6-6" />;
export const RetryIcon = () => <Icon path="M4 12a8 8 0 1 0 2.3-5.6M4 4v4h4" />;
