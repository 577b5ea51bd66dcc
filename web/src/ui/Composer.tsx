import { useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { SendIcon, StopIcon } from './icons.js';

interface ComposerProps {
  readonly onSend: (text: string) => boolean;
  readonly onStop: () => void;
  /** An answer is in progress and the connection is up. */
  readonly canStop: boolean;
}

export function Composer({ onSend, onStop, canStop }: ComposerProps) {
  const [text, setText] = useState('');
  const input = useRef<HTMLTextAreaElement>(null);

  const submit = () => {
    if (text.trim() === '') return;
    if (onSend(text)) setText('');
    input.current?.focus();
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    submit();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    // isComposing: Enter that confirms an IME candidate (Japanese, Chinese...) must not send.
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    }
  };

  return (
    <form className="composer" onSubmit={onSubmit} aria-label="Send a message">
      <div className="composer-box entry-card">
        <label htmlFor="composer-input" className="sr-only">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={input}
          className="composer-input entry-field"
          rows={1}
          value={text}
          placeholder="Message Parley…"
          aria-describedby="composer-hint"
          autoFocus
          onChange={(event) => setText(event.target.value)}
          onKeyDown={onKeyDown}
        />
        {canStop ? (
          <button type="button" className="button button-stop" onClick={onStop} aria-label="Stop the answer">
            <StopIcon />
            <span className="button-text">Stop</span>
          </button>
        ) : null}
        <button type="submit" className="button button-primary" disabled={text.trim() === ''} aria-label="Send message">
          <SendIcon />
          <span className="button-text">Send</span>
        </button>
      </div>
      <p id="composer-hint" className="composer-hint">
        Enter to send · Shift+Enter for a new line
      </p>
    </form>
  );
}
