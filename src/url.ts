// Pure: what counts as a proxy or target URL, for the config schema and the command line alike.

/** An absolute http:// or https:// URL with a host. */
export function isHttpUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
}

/** A user name or password in the URL's authority (false for text that is not a URL). */
export function hasCredentials(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return url.username !== '' || url.password !== '';
}

/** The URL's host name without IPv6 brackets, as socket and resolver APIs want it. */
export function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}
