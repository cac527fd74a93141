# The exporter (and the venue simulator of the demo profile): a slim image, a non-root user.
# tests/test_image.py replays these steps (ENV, WORKDIR, COPY, RUN, USER, ENTRYPOINT, CMD) into a
# clean virtualenv and runs the result: a new instruction must be one that replay understands.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MOVERS__METRICS__HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY requirements/lock.txt requirements/lock.txt
COPY exporter/ exporter/
# The runtime dependencies at exactly the versions the tests ran with. Everything the package reads
# at run time (SQL, the category map) is package data: the sources are removed once installed, so
# what runs is the installed package, as a user's `pip install` would have it.
RUN pip install --constraint requirements/lock.txt . \
 && rm -rf exporter \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin movers
COPY scenarios/ scenarios/
COPY docker/entrypoint.sh /usr/local/bin/movers-entrypoint

USER movers
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/readyz', timeout=4)"]
ENTRYPOINT ["movers-entrypoint"]
CMD ["run"]
