/** Inline icons: decorative (aria-hidden); every button carries its own text or label. */
interface IconProps {
  readonly path: string;
  readonly stroke?: number;
}

function Icon({ path, stroke = 2 }: IconProps) {
  return (
    <svg className="icon" viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false">
      <path d={path} fill="none" stroke="currentColor" strokeWidth={stroke} strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

export const SendIcon = () => <Icon path="M5 12h14M13 6l6 6-6 6" />;
export const StopIcon = () => <Icon path="M7 7h10v10H7z" />;
export const PlusIcon = () => <Icon path="M12 5v14M5 12h14" />;
export const DownIcon = () => <Icon path="M12 5v14M6 13l6 6 6-6" />;
export const RetryIcon = () => <Icon path="M4 12a8 8 0 1 0 2.3-5.6M4 4v4h4" />;
export const MenuIcon = () => <Icon path="M4 7h16M4 12h16M4 17h16" />;
export const CloseIcon = () => <Icon path="M6 6l12 12M18 6L6 18" />;
export const EditIcon = () => <Icon path="M4 20h4L19 9l-4-4L4 16v4zM13 7l4 4" />;
export const MoreIcon = () => <Icon path="M5 12h.01M12 12h.01M19 12h.01" stroke={3.5} />;
export const SearchIcon = () => <Icon path="M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM20 20l-4-4" />;
export const PrevIcon = () => <Icon path="M15 6l-6 6 6 6" />;
export const NextIcon = () => <Icon path="M9 6l6 6-6 6" />;
