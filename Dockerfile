# Pitchey Comms: one image for every node. Settings come from the environment (docs/settings.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY server ./server
COPY rooms ./rooms
COPY delivery ./delivery
COPY schemas ./schemas
COPY storage ./storage
RUN pip install . && useradd --system --home /app pitchey && mkdir -p /data && chown pitchey /data

USER pitchey
ENV DATA_DIR=/data ENVIRONMENT=production
EXPOSE 8000
# SIGTERM drains: WebSockets close with 1001, batched writes are flushed, claims released.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz').status == 200 else 1)"
CMD ["pitchey-comms", "serve", "--host", "0.0.0.0", "--port", "8000"]
