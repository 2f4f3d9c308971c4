// A listen address (`dns.listen`, `http.listen`, `sidecar.listen`) and how it is written.

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** 127.0.0.1:5353, [::]:5353: a listen address as the config writes it. */
export function formatAddress(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
