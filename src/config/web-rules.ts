/**
 * Schemas for the per-route web rules (redirects, header rules): the pieces of proxy.yaml that
 * describe what a route does to a request besides choosing its pool. Kept apart from schema.ts
 * so that file stays the table of keys.
 */
import { z } from 'zod';

/** RFC 9110 token: the characters a header name may hold. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A field value: visible characters, spaces and tabs; never CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Headers a rule may not touch: hop-by-hop ones describe one connection (the proxy sets them),
 * and the framing headers decide where a message ends — changing them desynchronises the peers.
 */
const FORBIDDEN = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding', 'content-length',
]);

const headerName = z.string().check((ctx) => {
  const name = ctx.value;
  if (!TOKEN.test(name)) ctx.issues.push({ code: 'custom', input: name, message: `"${name}" is not a header name: only letters, digits and !#$%&'*+.^_\`|~- are allowed` });
  else if (FORBIDDEN.has(name.toLowerCase())) ctx.issues.push({ code: 'custom', input: name, message: `"${name}" is a hop-by-hop or framing header: the proxy manages it, rules may not` });
});

const headerValue = z.string({ error: 'expected a string (quote numbers)' }).regex(FIELD_VALUE, 'must not contain control characters (CR, LF, NUL)');

export const headerRulesSchema = z
  .strictObject({
    set: z.record(headerName, headerValue).optional(),
    remove: z.array(headerName).optional(),
  })
  .check((ctx) => {
    const set = new Set(Object.keys(ctx.value.set ?? {}).map((n) => n.toLowerCase()));
    (ctx.value.remove ?? []).forEach((name, i) => {
      const lower = name.toLowerCase();
      if (set.has(lower)) ctx.issues.push({ code: 'custom', input: name, path: ['remove', i], message: `"${name}" is both set and removed: set already replaces it` });
    });
    const setNames = Object.keys(ctx.value.set ?? {});
    const lowers = new Map<string, string>();
    for (const name of setNames) {
      const earlier = lowers.get(name.toLowerCase());
      if (earlier !== undefined) ctx.issues.push({ code: 'custom', input: name, path: ['set', name], message: `"${name}" is set twice (as "${earlier}"): header names are case-insensitive` });
      lowers.set(name.toLowerCase(), name);
    }
  });

export type HeaderRulesConfig = z.output<typeof headerRulesSchema>;

/** A redirect target: `scheme://host[:port][/base]`, kept without a trailing `/`. */
export interface RedirectTarget {
  /** `https://example.com` or `https://example.com/base` (never ending in `/`). */
  readonly base: string;
}

export const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

export const redirectSchema = z.strictObject({
  to: z.string({ error: 'expected an absolute URL like https://example.com' }).transform((text, ctx): string => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not an absolute http(s) URL like https://example.com` });
      return z.NEVER;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !/^https?:\/\//i.test(text)) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not an absolute http(s) URL like https://example.com` });
      return z.NEVER;
    }
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#')) {
      ctx.addIssue({ code: 'custom', message: `"${text}" must be scheme://host[:port][/path], without credentials, query or fragment (the request's path and query are appended)` });
      return z.NEVER;
    }
    const path = url.pathname.replace(/\/+$/, '');
    return `${url.protocol}//${url.host}${path}`;
  }),
  code: z
    .union(REDIRECT_CODES.map((c) => z.literal(c)), { error: `must be one of ${REDIRECT_CODES.join(', ')}` })
    .prefault(308),
});

export type RedirectConfig = z.output<typeof redirectSchema>;
