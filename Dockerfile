# riskon in a container: slim Python, a non-root user, the database on a volume, `riskon run` as the command.
#   docker build -t riskon .
#   docker run -d --name riskon -v riskon-data:/data -e TELEGRAM_BOT_TOKEN riskon
# Your own config: -v "$PWD/config.yaml:/etc/riskon/config.yaml:ro". compose.yaml has the whole example.
FROM python:3.11-slim

# Unbuffered output (logs reach `docker logs` at once); no pip cache or version check in the image.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A system user with no login shell and no password; uid 10001 so it matches no user of the host by accident.
RUN groupadd --system --gid 10001 riskon \
 && useradd --system --uid 10001 --gid riskon --home-dir /home/riskon --create-home --shell /usr/sbin/nologin riskon

WORKDIR /src
COPY pyproject.toml README.md ./
COPY alerts ./alerts
COPY storage ./storage
COPY bot ./bot
RUN pip install . && rm -rf /src

# The shipped config; mount your own over it. Secrets are never in it: they come from the environment (${NAME}).
COPY config.yaml /etc/riskon/config.yaml

# The database (storage.path, relative to the working directory) and the caches live on the volume, owned by
# the riskon user, so a new image keeps every subscription, alert and rule state.
RUN mkdir -p /data && chown riskon:riskon /data
VOLUME ["/data"]
WORKDIR /data
ENV HOME=/home/riskon \
    MPLCONFIGDIR=/tmp/matplotlib

USER riskon:riskon

# Only used when config.yaml enables `health` with host 0.0.0.0 (inside a container 127.0.0.1 is unreachable).
EXPOSE 9108

# Exec form: riskon is PID 1 and gets the SIGTERM of `docker stop` itself; it drains and exits within 10 s
# (docker's default grace period).
STOPSIGNAL SIGTERM
CMD ["riskon", "run", "--config", "/etc/riskon/config.yaml"]
