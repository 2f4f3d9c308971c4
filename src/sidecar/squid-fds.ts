// Pure: Squid's cache manager page `filedescriptors` -> the number of client connections it holds.
//
// Squid 5's `info` page has no such count ("Number of clients accessing cache" counts client
// addresses seen, and never falls). The `filedescriptors` page lists every open descriptor with
// Squid's note on it; a client connection's note is set by the client side (client_side.cc) and
// stays one of these for the connection's whole life, a CONNECT tunnel's included, while server
// connections are noted with their URL or "Idle server: ...":
//   client http connect / client https connect   accepted, nothing read yet
//   Reading next request                         a request being read or answered (tunnels too)
//   Idle client: Waiting for next request        a kept-alive connection between requests
//   half-closed                                  the client closed its side mid-request
// A row:
//   "  12 Socket   15      82*     257  127.0.0.1:58260       Idle client: Waiting for next request"
// The page's own request is a client connection too; `self` (the address:port it came from, as
// Squid prints it) is left out.

const ROW = /^\s*\d+\s+Socket\s+\d+\s+\d+\*?\s+\d+\*?\s+(\S+)\s+(.*?)\s*$/;
const CLIENT_NOTE = /^(?:client \S+ connect|Reading next request|Idle client:|half-closed)/;
const HEADER = 'Active file descriptors:';

/** Client connections in a `filedescriptors` page; undefined if the text is not such a page. */
export function clientConnections(page: string, self: string | undefined): number | undefined {
  if (!page.includes(HEADER)) return undefined;
  let count = 0;
  for (const line of page.split('\n')) {
    const row = ROW.exec(line);
    if (row && row[1] !== self && CLIENT_NOTE.test(row[2] as string)) count += 1;
  }
  return count;
}
