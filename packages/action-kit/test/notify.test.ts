import { describe, expect, it } from 'vitest';
import { webhookKind, webhookPayload, type Notification } from '../src/notify';

const MESSAGE: Notification = {
  title: '✅ Deployed: acme/shop 1a2b3c4 to 2 hosts',
  outcome: 'success',
  fields: [
    ['Result', 'deployed'],
    ['Hosts', 'a@web1:22: deployed\nb@web2:22: deployed'],
    ['Note', '<@everyone> & <!channel>'],
  ],
  link: 'https://github.com/acme/shop/actions/runs/1',
};

describe('webhookKind', () => {
  it.each([
    ['https://hooks.slack.com/services/T0/B0/x', 'slack'],
    ['https://discord.com/api/webhooks/123/abc', 'discord'],
    ['https://discordapp.com/api/webhooks/123/abc', 'discord'],
    ['https://ptb.discord.com/api/webhooks/123/abc', 'discord'],
    // Discord's host but not its webhook path, a look-alike host, and anything else: Slack's format.
    ['https://discord.com/channels/1/2', 'slack'],
    ['https://discord.com.evil.example/api/webhooks/1/x', 'slack'],
    ['https://notdiscord.com/api/webhooks/1/x', 'slack'],
    ['https://mattermost.example/hooks/xyz', 'slack'],
    ['http://127.0.0.1:8080/hook', 'slack'],
    ['not a url', 'slack'],
  ])('%s → %s', (url, kind) => {
    expect(webhookKind(url)).toBe(kind);
  });
});

describe('webhookPayload', () => {
  it('Slack: text for every client, blocks, the run link, and <, >, & escaped so values cannot mention or link', () => {
    const payload = webhookPayload('slack', MESSAGE);
    expect(payload.text).toBe(
      '✅ Deployed: acme/shop 1a2b3c4 to 2 hosts\n*Result:* deployed\n*Hosts:* a@web1:22: deployed\nb@web2:22: deployed\n*Note:* &lt;@everyone&gt; &amp; &lt;!channel&gt;\n<https://github.com/acme/shop/actions/runs/1|View the run>',
    );
    expect(payload.blocks).toEqual([
      { type: 'section', text: { type: 'mrkdwn', text: '*✅ Deployed: acme/shop 1a2b3c4 to 2 hosts*' } },
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: '*Result:* deployed\n*Hosts:* a@web1:22: deployed\nb@web2:22: deployed\n*Note:* &lt;@everyone&gt; &amp; &lt;!channel&gt;',
        },
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: '<https://github.com/acme/shop/actions/runs/1|View the run>' }] },
    ]);
  });

  it('Discord: one embed with a colour per outcome, fields, the link, and no pings', () => {
    expect(webhookPayload('discord', MESSAGE)).toEqual({
      username: 'Skiff',
      embeds: [
        {
          title: '✅ Deployed: acme/shop 1a2b3c4 to 2 hosts',
          url: 'https://github.com/acme/shop/actions/runs/1',
          color: 0x2eb886,
          fields: [
            { name: 'Result', value: 'deployed', inline: true },
            { name: 'Hosts', value: 'a@web1:22: deployed\nb@web2:22: deployed', inline: true },
            { name: 'Note', value: '<@everyone> & <!channel>', inline: true },
          ],
        },
      ],
      allowed_mentions: { parse: [] },
    });
    const failed = webhookPayload('discord', { ...MESSAGE, outcome: 'failure' }) as { embeds: { color: number }[] };
    expect(failed.embeds[0]!.color).toBe(0xd40e0d);
  });
});
