# syntax=docker/dockerfile:1
#
# egress-failover: one image for both commands.
#   docker build -t egress-failover:0.1.0 .
#   docker run --rm egress-failover:0.1.0                      # --help
#   docker run --rm --read-only -v "$PWD/examples:/cfg:ro" egress-failover:0.1.0 check-config /cfg/egress.yaml
#
# Base: Node.js 26 ("Lithium"), the Active LTS line since October 2026 (24 is in Maintenance LTS
# until April 2028, 22 until April 2027, 20 reached end of life in April 2026). package.json asks
# for node >=20.19, so any LTS from 20.19 on runs it; the newest LTS gets fixes longest.
# trixie-slim (Debian 13, the current stable) is named explicitly so a distribution change never
# arrives with a tag update. For reproducible builds pin a digest: node:26-trixie-slim@sha256:...
# Both stages use the same image so nothing compiled in one is run by another Node.

FROM node:26-trixie-slim AS build
WORKDIR /src
# Manifests first: the dependency layer is reused until package*.json change.
# --ignore-scripts: `prepare` would run tsc before the sources are copied; the build runs below.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:26-trixie-slim AS runtime
ENV NODE_ENV=production
# V8's young generation grows to 3 x 16 MB semi-spaces under load by default; both commands
# allocate little that lives, so 2 MB semi-spaces keep the DNS server's peak RSS under dnsperf at
# 67 MB instead of 78 MB (bench/rss.ts) for slightly more frequent scavenges. Only V8 flags can do
# this, and only before start: here, or in a pod's env.
ENV NODE_OPTIONS=--max-semi-space-size=2
WORKDIR /app
# Production dependencies only (pino, prom-client, yaml, zod). --ignore-scripts for the
# same `prepare` (tsc is a dev dependency and is not here); none of them needs an install script.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force
COPY bin ./bin
COPY examples ./examples
COPY --from=build /src/dist ./dist
# `egress-failover` on PATH, as `npx egress-failover` resolves it in a clone. Node follows the
# symlink, so bin/egress-failover.js still imports ../dist/main.js from /app.
RUN ln -s /app/bin/egress-failover.js /usr/local/bin/egress-failover \
  && chmod 0755 /app/bin/egress-failover.js \
  && groupadd --system --gid 10001 egress \
  && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin egress
# Numeric, so the kubelet can verify runAsNonRoot without reading /etc/passwd. The files stay
# owned by root: the process can read its code but not change it, and it writes nothing, so a
# read-only root filesystem needs no writable volume.
USER 10001:10001

# dns.listen (UDP and TCP) and http.listen defaults; the sidecar's default is 8081.
EXPOSE 5353/udp 5353/tcp 8080
ENTRYPOINT ["egress-failover"]
CMD ["--help"]
