#!/usr/bin/env python3
# A client that keeps its connection to the proxy open, as requests.Session and urllib3 do: it
# resolves the proxy's name once per connection (dig through the given resolver), then sends every
# request on that connection until the connection ends, and only then resolves again. One JSON line
# per request on stdout, for test/helpers/clients.ts.
#
#   kept-client.py http   RESOLVER_PORT NAME PROXY_PORT URL TIMEOUT_S PAUSE_S
#   kept-client.py tunnel RESOLVER_PORT NAME PROXY_PORT URL TIMEOUT_S PAUSE_S CA_FILE
#
# http: absolute-form requests on a kept http.client connection (plain http:// URLs through a proxy).
# tunnel: one CONNECT tunnel (http.client's set_tunnel) kept open, HTTPS requests inside it.
import http.client
import ipaddress
import json
import ssl
import subprocess
import sys
import time
from urllib.parse import urlsplit


def resolve(resolver_port, name):
    out = subprocess.run(
        ["dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "-p", str(resolver_port), name, "A"],
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout
    for line in out.split():
        try:
            return str(ipaddress.IPv4Address(line))
        except ValueError:
            continue
    raise OSError(f"no address for {name}: {out.strip() or 'empty answer'}")


def main():
    mode, resolver_port, name, proxy_port, url, timeout_s, pause_s = sys.argv[1:8]
    target = urlsplit(url)
    timeout = float(timeout_s)
    context = ssl.create_default_context(cafile=sys.argv[8]) if mode == "tunnel" else None
    conn = None
    while True:
        record = {}
        try:
            if conn is None:
                address = resolve(resolver_port, name)
                record["fresh"] = True
                if mode == "tunnel":
                    conn = http.client.HTTPSConnection(address, int(proxy_port), timeout=timeout, context=context)
                    conn.set_tunnel(target.hostname, target.port or 443)
                else:
                    conn = http.client.HTTPConnection(address, int(proxy_port), timeout=timeout)
                record["proxy"] = address
                conn.connect()
            record["proxy"] = conn.sock.getpeername()[0]
            if mode == "tunnel":
                conn.request("GET", target.path or "/")
            else:
                conn.request("GET", url, headers={"Host": target.netloc})
            response = conn.getresponse()
            response.read()
            record["status"] = response.status
            record["ok"] = response.status == 200
            squid_error = response.getheader("X-Squid-Error")
            if squid_error:
                record["squidError"] = squid_error.split(" ")[0]
            if response.will_close:
                # The proxy said it closes this connection: the next request opens (and resolves) anew.
                record["closed"] = True
                conn.close()
                conn = None
        except Exception as err:  # every failure is a record; the loop goes on with a new connection
            record["ok"] = False
            record["error"] = f"{type(err).__name__}: {err}"
            if conn is not None:
                conn.close()
            conn = None
        record["at"] = time.time() * 1000
        print(json.dumps(record), flush=True)
        time.sleep(float(pause_s))


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
