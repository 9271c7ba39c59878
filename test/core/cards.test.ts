// The title the pipeline builds for a ticket's topic: what agents see in the forum's topic list.
import { describe, expect, it } from 'vitest';
import { topicTitle, utf8Length } from '../../core/cards.ts';

describe('topic title built by the pipeline', () => {
  it('reads "[TIER] Company · subject"', () => {
    expect(topicTitle('enterprise', 'Acme Corp', 'Login fails')).toBe('[ENT] Acme Corp · Login fails');
    expect(topicTitle(null, null, '  Invoice\n wrong ')).toMatch(/^\[[^\]]+\] Invoice wrong$/);
  });

  it.each([
    ['a family emoji (several code points joined)', '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}'],
    ['a flag (two regional indicators)', '\u{1F1E9}\u{1F1EA}'],
    ['a letter with a combining accent', 'e\u0301'],
    ['a skin-toned thumbs up', '\u{1F44D}\u{1F3FD}'],
  ])('cuts at 128 bytes without splitting %s', (_name, grapheme) => {
    const title = topicTitle('premium', 'Globex', `${'x'.repeat(90)}${grapheme.repeat(20)}`);
    expect(utf8Length(title)).toBeLessThanOrEqual(128);
    expect(title.endsWith('…')).toBe(true);
    // What is left before the ellipsis is the prefix followed by whole graphemes only.
    const kept = title.slice(0, -1).replace(/^\[PRM\] Globex · x+/, '');
    expect(kept.length % grapheme.length).toBe(0);
    expect(kept).toBe(grapheme.repeat(kept.length / grapheme.length));
  });
});
