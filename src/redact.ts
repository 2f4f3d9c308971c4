// Pure: credentials out of URLs, wherever they are about to be shown (logs, /status, _status TXT,
// error messages). The one place that knows what a URL's userinfo looks like.

// `//`, then the userinfo up to the authority's LAST "@" (a raw "@" in a password must not leave
// part of it behind), never crossing into the path, query, fragment or the next word.
const USERINFO = /\/\/[^\s/?#]*@/g;

/** "http://user:pass@squid:3128" -> "http://***@squid:3128"; every URL in a longer text too. */
export function redactUrl(text: string): string {
  return text.replace(USERINFO, '//***@');
}
