// Squid's cache manager `filedescriptors` page -> the client connections it holds. The pages are
// as Squid 5.7 printed them here (a keep-alive client, a CONNECT tunnel, a request in flight).
import { describe, expect, it } from 'vitest';
import { clientConnections } from '../../src/sidecar/squid-fds.js';

const PAGE = `Active file descriptors:
File Type   Tout Nread  * Nwrite * Remote Address        Description
---- ------ ---- -------- -------- --------------------- ------------------------------
   0 Log       0       0        0                        stdin
   1 Log       0       0        0                        stdout
   2 Log       0       0        0                        stderr
   3 Log       0       0        0                        /tmp/ef-squid-5dRBfj/efmgr6765n1/cache.log
   8 Socket    0       0        0  [::]:51707            DNS Socket IPv6
   9 Socket    0       0      360  0.0.0.0:33050         DNS Socket IPv4
  10 File      0       0      816                        /tmp/ef-squid-5dRBfj/efmgr6765n1/access.log
  11 Socket    0       0        0  127.0.0.14:3128       HTTP Socket
  12 Socket   15      82*     257  127.0.0.1:38024       Idle client: Waiting for next request
  13 Socket   30     510*     918  127.0.0.16:80         Idle server: 127.0.0.16:80/127.0.0.16
  14 Socket   15      82*     257  127.0.0.1:38032       Idle client: Waiting for next request
  15 Socket 86399      67*      39  127.0.0.1:45722       Reading next request
  16 Socket  899       0*       0  127.0.0.13:443        tls.origin.test
  17 Socket  300       0*       0  127.0.0.1:38050       client http connect
  18 Socket  899       0*     310  127.0.0.16:80         http://127.0.0.16/x
  19 Socket 86400      94        0  127.0.0.1:38084       Reading next request
`;

describe('clientConnections', () => {
  it('counts client-side descriptors: idle keep-alive, a request or tunnel, one just accepted', () => {
    // 12, 14 idle; 15 a tunnel's client side; 17 accepted; 19 the page's own request.
    expect(clientConnections(PAGE, undefined)).toBe(5);
  });

  it("leaves out the page's own connection, by the address it came from", () => {
    expect(clientConnections(PAGE, '127.0.0.1:38084')).toBe(4);
    expect(clientConnections(PAGE, '127.0.0.1:99999')).toBe(5);
  });

  it('never counts server connections, listening sockets or files', () => {
    const serversOnly = PAGE.split('\n')
      .filter((line) => !/client|Reading next/.test(line))
      .join('\n');
    expect(clientConnections(serversOnly, undefined)).toBe(0);
  });

  it('is undefined for anything but a filedescriptors page (an error page, another server)', () => {
    expect(clientConnections('<html>Access Denied</html>', undefined)).toBeUndefined();
    expect(clientConnections('', undefined)).toBeUndefined();
  });
});
