# One image, two commands: `streamlearn worker` (the node) and `streamlearn replay ...`.
# It runs as a fixed non-root user, 10001:10001 (deploy/kubernetes sets the same runAsUser),
# and writes only to /data (the state directory) and /tmp, so the root filesystem can be
# mounted read-only.
FROM python:3.11-slim
# No .pyc written next to the installed code at run time; logs are not held in a buffer.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY app ./app
RUN pip install --no-cache-dir --disable-pip-version-check . \
    && groupadd --system --gid 10001 streamlearn \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin streamlearn \
    && install -d -o 10001 -g 10001 -m 0750 /data
COPY models.toml ./
# Numeric, so that Kubernetes' runAsNonRoot can check it without a passwd lookup.
USER 10001:10001
ENV HOME=/tmp STREAMLEARN_HTTP_HOST=0.0.0.0 STREAMLEARN_HTTP_PORT=8000 \
    STREAMLEARN_STATE_DIR=/data STREAMLEARN_MODELS=/app/models.toml
EXPOSE 8000
# Liveness: the node's HTTP server answers (slim images have no curl; Python has urllib).
# docker-compose.yml replaces it with /readyz to order its services.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${STREAMLEARN_HTTP_PORT:-8000}/healthz', timeout=3)"
CMD ["streamlearn", "worker"]
