# One image for every pagerpatch service; the command picks the service (`python -m services.<name>`).
FROM python:3.11-slim-bookworm

# git: workspaces and pull requests; bubblewrap: the test sandbox (fixgen); tini: signals reach the service.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git bubblewrap tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir uv==0.13.8 \
 && uv pip install --system --no-cache -r requirements.lock
COPY schemas ./schemas
COPY pagerpatch ./pagerpatch
COPY services ./services
COPY config ./config
RUN uv pip install --system --no-cache --no-deps . \
 && useradd --uid 10001 --create-home pagerpatch \
 && mkdir -p /var/lib/pagerpatch && chown pagerpatch /var/lib/pagerpatch

USER pagerpatch
ENV PAGERPATCH_HOME=/var/lib/pagerpatch \
    PAGERPATCH_INGEST_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
# ingest 8080, console 8081, /metrics of the other services 9090 (when PAGERPATCH_METRICS__PORT is set)
EXPOSE 8080 8081 9090
ENTRYPOINT ["tini", "--"]
CMD ["pagerpatch", "--help"]
