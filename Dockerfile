# One image for every process of the lab on Kubernetes: the gateways and the backends
# (`node services/main.js <service>`, the service chosen by the container's argument), the
# fault proxy in every backend pod (`node services/fault-proxy/main.js`, by the container's
# command), and the backends' fault sidecar (`fault-sidecar run`, with tc and nft). The
# services run compiled JavaScript, bundled by the lab's own build (lab/build/lab-build.ts,
# esbuild; lab/build/build-cli.ts runs it) in a build stage: nothing is compiled when a pod starts.
#
#   docker build -t chaos-lab:dev .
#   docker run --rm -e STRATEGY=naive -e UPSTREAM_ACCOUNT=… chaos-lab:dev gateway
#
# The services and the proxy run as the numeric user 10001 (Kubernetes can then check
# runAsNonRoot without trusting the image); the fault sidecar runs as root by its own
# securityContext.

ARG NODE_VERSION=20.20

# Production dependencies only, installed exactly as the lock file says: what the build bundles.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The services' JavaScript: one bundle per entry point, with its chunks, as the local lab runs it.
FROM deps AS build
COPY tsconfig.json ./
COPY services ./services
COPY lab/repo-root.ts ./lab/repo-root.ts
COPY lab/build/lab-build.ts lab/build/build-cli.ts ./lab/build/
RUN dir=$(node --import tsx lab/build/build-cli.ts /tmp/lab-build) \
  && mv "$dir" /app/dist

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# iproute2 gives the sidecar tc (netem), nftables gives it nft; flock comes with util-linux.
RUN apt-get update \
  && apt-get install -y --no-install-recommends iproute2 nftables \
  && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 lab \
  && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lab
WORKDIR /app
ENV NODE_ENV=production
# Owned by root and not writable by the services: with a read-only root filesystem the only
# writable path is the /tmp emptyDir. The bundles carry their dependencies (no node_modules),
# and the build's own package.json makes them ES modules.
COPY --from=build /app/dist ./
# COPY then chmod, not `COPY --chmod`: the classic builder (a distro's or colima's docker, no
# BuildKit) rejects --chmod, and a checkout may have lost the script's executable bit.
COPY services/fault-sidecar/fault-sidecar.sh /usr/local/bin/fault-sidecar
RUN chmod 0755 /usr/local/bin/fault-sidecar
USER 10001:10001
ENTRYPOINT ["node", "services/main.js"]
