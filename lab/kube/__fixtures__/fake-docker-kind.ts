/**
 * Fake `docker` and `kind` executables for the tests of the doctor and `up/down --target kind`:
 * Docker cannot run on the machines the project is tested on, so these small sh scripts, put first
 * on PATH, print what the real ones print (formats copied from docker 28 and kind v0.31.0) and
 * record every call. Their behaviour is chosen per test through the environment:
 *
 * - FAKE_DOCKER: `running` (default), `stopped` (the daemon is not running), `denied` (socket
 *   permission denied);
 * - FAKE_BUILD: `ok` (default), `fail`, or `slow` (prints a step, then sleeps: for Ctrl-C);
 * - FAKE_IMAGE_ID: the 64 hex digits `docker image inspect --format {{.Id}}` gives the image after
 *   `sha256:` (a rebuild that changed it gives another); FAKE_IMAGE=missing: there is no image;
 * - FAKE_KIND_VERSION: what `kind version` says (default 0.31.0);
 * - the kind cluster exists while `<state>/cluster` holds its name (`kind create cluster` writes
 *   the name kind would give it: `--name`, else the configuration's `name:`, else `kind`).
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const DOCKER = `#!/bin/sh
echo "docker $*" >> "$FAKE_STATE/calls"
case "$1" in
  info)
    case "\${FAKE_DOCKER:-running}" in
      running) echo "28.3.2" ;;
      stopped)
        echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
        exit 1 ;;
      denied)
        echo "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get \\"http://%2Fvar%2Frun%2Fdocker.sock/v1.51/info\\": dial unix /var/run/docker.sock: connect: permission denied" >&2
        exit 1 ;;
    esac ;;
  build)
    echo '#0 building with "default" instance using docker driver' >&2
    echo '#1 [internal] load build definition from Dockerfile' >&2
    echo '#1 transferring dockerfile: 1.71kB done' >&2
    if [ "\${FAKE_BUILD:-ok}" = slow ]; then
      echo '#5 [deps 1/3] FROM docker.io/library/node:20.20-bookworm-slim' >&2
      exec sleep 60
    fi
    if [ "\${FAKE_BUILD:-ok}" = fail ]; then
      echo '#9 [deps 3/3] RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force' >&2
      echo '#9 2.113 npm error code EUSAGE' >&2
      echo '#9 ERROR: process "/bin/sh -c npm ci --omit=dev --no-audit --no-fund && npm cache clean --force" did not complete successfully: exit code: 1' >&2
      echo 'ERROR: failed to build: failed to solve: process "/bin/sh -c npm ci --omit=dev" did not complete successfully: exit code: 1' >&2
      exit 1
    fi
    echo '#14 exporting to image' >&2
    echo '#14 naming to docker.io/library/chaos-lab:dev done' >&2
    echo '#14 DONE 0.4s' >&2 ;;
  image)
    # docker image inspect --format {{.Id}} <image>
    if [ "\${FAKE_IMAGE:-present}" = missing ]; then
      echo '[]'
      echo "Error response from daemon: No such image: $5" >&2
      exit 1
    fi
    echo "sha256:\${FAKE_IMAGE_ID:-5f0c2d1e8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d}" ;;
  tag) ;;
  *) echo "docker: '$1' is not a docker command." >&2; exit 1 ;;
esac
`;

const KIND = `#!/bin/sh
echo "kind $*" >> "$FAKE_STATE/calls"
case "$1" in
  version) echo "kind v\${FAKE_KIND_VERSION:-0.31.0} go1.24.6 linux/amd64" ;;
  get)
    if [ -s "$FAKE_STATE/cluster" ]; then cat "$FAKE_STATE/cluster"; else echo "No kind clusters found." >&2; fi ;;
  create)
    # kind's order: --name, else the configuration's name:, else "kind".
    name=""; config=""; shift 2
    while [ $# -gt 0 ]; do
      case "$1" in
        --name) name="$2"; shift 2 ;;
        --config) config="$2"; shift 2 ;;
        *) shift ;;
      esac
    done
    if [ -n "$config" ] && [ ! -r "$config" ]; then
      echo "ERROR: failed to create cluster: error reading file: open $config: no such file or directory" >&2; exit 1
    fi
    [ -z "$name" ] && [ -n "$config" ] && name=$(sed -n 's/^name: *//p' "$config" | head -n 1)
    [ -z "$name" ] && name=kind
    echo "Creating cluster \\"$name\\" ..." >&2
    echo ' ✓ Ensuring node image (kindest/node:v1.33.7) 🖼' >&2
    echo ' ✓ Preparing nodes 📦' >&2
    echo ' ✓ Starting control-plane 🕹️' >&2
    echo "Set kubectl context to \\"kind-$name\\"" >&2
    echo "$name" > "$FAKE_STATE/cluster" ;;
  load)
    shift 2
    while [ $# -gt 0 ] && [ "$1" != --name ]; do
      echo "Image: \\"$1\\" with ID \\"sha256:5f0c2d1e\\" not yet present on node \\"chaos-lab-control-plane\\", loading..."
      shift
    done ;;
  delete)
    echo "Deleting cluster \\"$4\\" ..." >&2
    rm -f "$FAKE_STATE/cluster" ;;
  *) echo "ERROR: unknown command \\"$1\\" for \\"kind\\"" >&2; exit 1 ;;
esac
`;

export interface FakeDockerKind {
  /** The directory of the fakes and their state (removed by remove()). */
  readonly dir: string;
  /** PATH with the fakes first. */
  readonly path: string;
  /** The environment for a runner: PATH, FAKE_STATE and the given behaviour. */
  env(behaviour?: Record<string, string>): Record<string, string | undefined>;
  /** Every call, `docker build -t chaos-lab:dev .`, in order. */
  calls(): string[];
  /** The kind cluster `name` exists (or none does). */
  clusterExists(exists: boolean, name?: string): void;
  reset(): void;
  remove(): void;
}

export function fakeDockerKind(): FakeDockerKind {
  const dir = mkdtempSync(path.join(tmpdir(), 'fake-docker-kind-'));
  for (const [name, script] of [
    ['docker', DOCKER],
    ['kind', KIND],
  ] as const) {
    writeFileSync(path.join(dir, name), script);
    chmodSync(path.join(dir, name), 0o755);
  }
  const calls = path.join(dir, 'calls');
  const cluster = path.join(dir, 'cluster');
  const searchPath = `${dir}${path.delimiter}${process.env.PATH ?? ''}`;
  return {
    dir,
    path: searchPath,
    env: (behaviour = {}) => ({ ...process.env, PATH: searchPath, FAKE_STATE: dir, ...behaviour }),
    calls: () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean) : []),
    clusterExists: (exists, name = 'chaos-lab') => {
      if (exists) writeFileSync(cluster, `${name}\n`);
      else rmSync(cluster, { force: true });
    },
    reset: () => rmSync(calls, { force: true }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
