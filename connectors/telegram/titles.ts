// Topic titles and icons. Telegram counts a topic title in UTF-8 bytes (at most 128) and rejects longer ones, so the
// cut happens here, on a whole grapheme (an emoji with its modifiers, a letter with its accents), never mid-character.
import { cutUtf8 as cutCore, utf8Length } from '../../core/cards.ts';
import type { Tier } from '../../core/segment.ts';

export const TOPIC_TITLE_MAX_BYTES = 128;

/** The six colours Telegram accepts for a topic icon; the colour cannot be changed after creation. */
export const TOPIC_ICON_COLORS = [0x6fb9f0, 0xffd67e, 0xcb86db, 0x8eee98, 0xff93b2, 0xfb6f5f] as const;

const TIER_COLOR: Record<Tier, number> = {
  enterprise: 0xfb6f5f, // red: seen first in the topic list
  premium: 0xffd67e, // gold
  standard: 0x6fb9f0, // blue
  free: 0x8eee98, // green
};

export function iconColorForTier(tier: Tier | null): number {
  return tier ? TIER_COLOR[tier] : 0xcb86db;
}

/** The cut itself is the core's, so a title built by the pipeline and one cut here agree. */
export { utf8Length };

export function cutUtf8(text: string, maxBytes: number = TOPIC_TITLE_MAX_BYTES): string {
  return cutCore(text, maxBytes);
}

/** A title Telegram accepts: single line, not empty, at most 128 bytes. */
export function topicTitleFor(title: string): string {
  const oneLine = title.replace(/\s+/g, ' ').trim();
  return cutUtf8(oneLine || '(no subject)', TOPIC_TITLE_MAX_BYTES);
}

export function topicLink(channelId: string, topicId: number): string {
  return `https://t.me/c/${channelId}/${topicId}`;
}

/** Same scale as the pipeline's message priorities, so a topic and a card of one tier compete fairly. */
export const TIER_PRIORITY: Record<Tier, number> = { enterprise: 40, premium: 30, standard: 20, free: 10 };

export function priorityForTier(tier: Tier | null): number {
  return tier ? TIER_PRIORITY[tier] : 0;
}
