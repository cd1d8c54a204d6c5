# aitrader: the bot, the monitoring API and the dashboard in one slim, non-root image.
#   docker build -t aitrader .            (or: docker compose up, see README "Containers")
# Stage 1 builds a virtual environment from the committed lock files; stage 2 copies only it.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements/ requirements/
# the run dependencies at their locked versions; the ops + dashboard extras pinned by dev.lock
RUN /opt/venv/bin/pip install -r requirements/run.lock
COPY pyproject.toml README.md ./
COPY src/ src/
RUN /opt/venv/bin/pip install -c requirements/dev.lock ".[ops,dashboard]" \
    && /opt/venv/bin/pip check

FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="aitrader" \
      org.opencontainers.image.source="https://github.com/aitrader/aitrader" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin aitrader \
    && mkdir -p /data && chown aitrader:aitrader /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AITRADER__DATA__DIR=/data/store \
    AITRADER__API__PORT=8080
USER aitrader
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080 8501
# healthy when the API answers /health (the ledger can be read); the dashboard service in
# docker-compose.yml overrides this with Streamlit's own health endpoint
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AITRADER__API__PORT', '8080') + '/health', timeout=4)"]
ENTRYPOINT ["aitrader"]
CMD ["serve", "--ledger", "/data/paper.db", "--host", "0.0.0.0"]
