// Pure: what an operator endpoint answers, as a value. The routes build these; server.ts writes them.
// Apart from the socket module so pure routes need not import an edge.

export interface HttpReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** Path (no query string) -> reply; undefined is 404. May be async (e.g. /metrics). */
export type Route = (path: string) => HttpReply | undefined | Promise<HttpReply | undefined>;

export const json = (status: number, value: unknown): HttpReply => ({
  status,
  contentType: 'application/json; charset=utf-8',
  body: `${JSON.stringify(value, null, 2)}\n`,
});

/** /metrics: a registry's Prometheus text, rendered at each scrape. */
export const metricsReply = async (registry: {
  readonly contentType: string;
  metrics(): Promise<string>;
}): Promise<HttpReply> => ({
  status: 200,
  contentType: registry.contentType,
  body: await registry.metrics(),
});

export const text = (status: number, body: string): HttpReply => ({
  status,
  contentType: 'text/plain; charset=utf-8',
  body: body.endsWith('\n') ? body : `${body}\n`,
});
