# One image, two commands: `streamlearn worker` (the node) and `streamlearn replay ...`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY app ./app
RUN pip install --no-cache-dir . && useradd --create-home streamlearn && mkdir /data && chown streamlearn /data
COPY models.toml ./
USER streamlearn
ENV STREAMLEARN_HTTP_HOST=0.0.0.0 STREAMLEARN_STATE_DIR=/data STREAMLEARN_MODELS=/app/models.toml
EXPOSE 8000
CMD ["streamlearn", "worker"]
