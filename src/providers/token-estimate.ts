/**
 * Token estimate for remote models, whose tokenizer we do not have. Rule: ASCII characters count
 * 1/4 token each (≈ 4 characters per token for English with BPE tokenizers); every other code point
 * counts 1 token (CJK is ≈ 1 token per character, emoji and rare letters take 1–3). Rounded up.
 * It errs on the high side for non-English text, so a history window built with it fits the context.
 */
export function estimateTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  // By UTF-16 unit, a surrogate pair taken as its one code point: half the CPU of a string
  // iterator, and every turn counts its whole history window again.
  for (let index = 0; index < text.length; index += 1) {
    const unit = text.charCodeAt(index);
    if (unit < 128) {
      ascii += 1;
      continue;
    }
    other += 1;
    const next = text.charCodeAt(index + 1);
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) index += 1;
  }
  return Math.ceil(ascii / 4) + other;
}
