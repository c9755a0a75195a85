# authserver: a minimal image. Build: docker build -t authserver .
# Run on the embedded SQLite default (data in the container's /app/var and /app/keys):
#   docker run -p 8000:8000 authserver
# Production: see docker-compose.yml (PostgreSQL, a one-shot `db upgrade`, then `serve`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the package (and its `authserver` console script); the Alembic revisions under
# migrations/ are packaged into the wheel as authserver/migrations. authserver.verify is the
# distribution authserver-verify (verify/, whose source is authserver/verify): installed from
# here in the same pip run, never from an index.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY authserver ./authserver
COPY migrations ./migrations
COPY verify ./verify
RUN pip install ./verify . && rm -rf /src

# A non-root user owning the working directory, where the embedded default keeps var/ and keys/.
RUN useradd --system --uid 10001 --home-dir /app --create-home --shell /usr/sbin/nologin authserver
WORKDIR /app
USER authserver

EXPOSE 8000
ENTRYPOINT ["authserver"]
CMD ["serve", "--host", "0.0.0.0"]
