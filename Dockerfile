# wiro-seedream-mcp over streamable HTTP, for a team's endpoint or a hosted connector.
#   docker build -t wiro-seedream-mcp .
#   docker run -p 8000:8000 -e WIRO_HTTP_AUTH=key wiro-seedream-mcp
# It listens on 0.0.0.0:8000 inside the container and refuses to start there without
# authentication (WIRO_HTTP_AUTH=key, or WIRO_API_KEY with WIRO_OAUTH_ISSUER / WIRO_HTTP_TOKENS).

# Built with uv from the lock file: the same versions the tests ran with.
FROM python:3.12-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md LICENSE ./
# Dependencies first (a layer that changes only with the lock file), then the project itself.
RUN uv sync --locked --no-dev --extra postgres --no-install-project
COPY server ./server
RUN uv sync --locked --no-dev --extra postgres --no-editable

# The image: Python, the virtual environment, and an unprivileged user; no uv, no sources.
FROM python:3.12-slim-bookworm
RUN useradd --system --uid 10001 --create-home --home-dir /home/wiro wiro
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WIRO_STATE_DIR=/home/wiro/state
USER wiro
WORKDIR /home/wiro
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# SIGTERM (docker stop) hands every waiting call its task id, then exits within 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["wiro-seedream-mcp", "serve", "--http", "--host", "0.0.0.0", "--port", "8000"]
