import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Probe, ProbeOutcome } from './gate';

export interface StatusRange {
  min: number;
  max: number;
}

/** `200`, `200-399`, `2xx`; undefined if the text is none of these. */
export function parseStatusRange(text: string): StatusRange | undefined {
  const trimmed = text.trim().toLowerCase();
  let match = /^([1-5])xx$/.exec(trimmed);
  if (match) return { min: Number(match[1]) * 100, max: Number(match[1]) * 100 + 99 };
  match = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(trimmed);
  if (!match) return undefined;
  const min = Number(match[1]);
  const max = match[2] === undefined ? min : Number(match[2]);
  if (min < 100 || max > 599 || min > max) return undefined;
  return { min, max };
}

export interface HttpCheck {
  url: string;
  status: StatusRange;
  /** The body must contain this text. */
  body?: string;
  /** Per request. */
  timeoutMs: number;
  /**
   * Connect here instead of the URL's host and port, e.g. the runner end of an SSH tunnel; the
   * request still carries the URL's Host header (and TLS server name), as the app expects.
   */
  via?: { host: string; port: number };
}

const MAX_BODY_BYTES = 1024 * 1024;

/** One GET. Never throws: every outcome is ok or waiting (a 500 now may be a 200 once the app has started). */
export function checkHttp(check: HttpCheck): Promise<ProbeOutcome> {
  const url = new URL(check.url);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const done = (outcome: ProbeOutcome) => resolve(outcome);
    const req = request(
      {
        protocol: url.protocol,
        host: check.via?.host ?? url.hostname.replace(/^\[|\]$/g, ''),
        port: check.via?.port ?? (url.port || (url.protocol === 'https:' ? 443 : 80)),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { host: url.host, 'user-agent': 'skiff-health-check' },
        servername: url.hostname,
        timeout: check.timeoutMs,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_BODY_BYTES) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('error', (error) => done({ state: 'waiting', detail: error.message }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < check.status.min || status > check.status.max) {
            done({ state: 'waiting', detail: `HTTP ${status}, expected ${check.status.min}-${check.status.max}` });
            return;
          }
          if (check.body !== undefined && !Buffer.concat(chunks).toString('utf8').includes(check.body)) {
            done({ state: 'waiting', detail: `HTTP ${status}, but the body does not contain the expected text` });
            return;
          }
          done({ state: 'ok', detail: `HTTP ${status}` });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${check.timeoutMs} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) => done({ state: 'waiting', detail: error.code ?? error.message }));
    req.end();
  });
}

export function httpProbe(check: HttpCheck, name = check.url): Probe {
  return { name, check: () => checkHttp(check) };
}
