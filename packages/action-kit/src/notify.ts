import * as core from '@actions/core';

/** A chat message about one action run, rendered for Slack or Discord incoming webhooks. */
export interface Notification {
  /** One line, e.g. "✅ Deployed acme/shop 1a2b3c4 to 3 hosts". */
  title: string;
  outcome: 'success' | 'failure' | 'warning';
  /** Name/value pairs shown under the title (result, version, hosts, duration, …). */
  fields: readonly (readonly [string, string])[];
  /** The workflow run, linked from the message. */
  link?: string;
}

export type WebhookKind = 'slack' | 'discord';

/**
 * Which payload a webhook URL takes: Discord's for discord.com (and discordapp.com) /api/webhooks/
 * URLs, Slack's for everything else — hooks.slack.com and the many services that accept Slack's
 * `{ text }` format (Mattermost, Rocket.Chat, Teams workflows, Google Chat takes `text` too).
 */
export function webhookKind(url: string): WebhookKind {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname.toLowerCase();
    const discordHost = /(^|\.)discord(app)?\.com$/.test(host);
    if (discordHost && parsed.pathname.startsWith('/api/webhooks/')) return 'discord';
  } catch {
    /* not a URL: the input reader refuses it before this */
  }
  return 'slack';
}

const COLOR = { success: 0x2eb886, failure: 0xd40e0d, warning: 0xdaa038 } as const;

/** The JSON body for that kind of webhook. Slack gets `text` (every client shows it) plus blocks; Discord gets one embed. */
export function webhookPayload(kind: WebhookKind, message: Notification): Record<string, unknown> {
  if (kind === 'discord') {
    return {
      username: 'Skiff',
      embeds: [
        {
          title: message.title.slice(0, 256),
          ...(message.link ? { url: message.link } : {}),
          color: COLOR[message.outcome],
          fields: message.fields
            .slice(0, 25)
            .map(([name, value]) => ({ name: name.slice(0, 256), value: (value || '—').slice(0, 1024), inline: value.length <= 40 })),
        },
      ],
      // Only the embed: no @everyone or role pings from values that happen to contain them.
      allowed_mentions: { parse: [] },
    };
  }
  const lines = message.fields.map(([name, value]) => `*${slackEscape(name)}:* ${slackEscape(value)}`);
  const link = message.link ? `<${message.link}|View the run>` : undefined;
  const text = [slackEscape(message.title), ...lines, ...(link ? [link] : [])].join('\n');
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${slackEscape(message.title)}*` } },
      ...(lines.length > 0 ? [{ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n').slice(0, 3000) } }] : []),
      ...(link ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: link }] }] : []),
    ],
  };
}

/** Slack's three control characters in mrkdwn. */
function slackEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/**
 * Posts the message; a webhook that fails is a warning, not a failed step (the deploy already
 * happened). The URL is a secret: it is never logged, and errors name only the webhook's kind.
 */
export async function sendNotification(url: string, message: Notification, options: { timeoutMs?: number } = {}): Promise<boolean> {
  const kind = webhookKind(url);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(webhookPayload(kind, message)),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    await response.text().catch(() => '');
    if (!response.ok) {
      core.warning(`The ${kind} notify-webhook answered HTTP ${response.status}; no notification was delivered`);
      return false;
    }
    core.info(`Sent the ${kind} notification`);
    return true;
  } catch (error) {
    // fetch's errors can quote the URL: say only what kind of failure it was.
    const cause = (error as Error).name === 'TimeoutError' ? 'timed out' : 'could not connect';
    core.warning(`The ${kind} notify-webhook ${cause}; no notification was delivered`);
    return false;
  }
}
