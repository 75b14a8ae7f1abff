FROM python:3.11-slim
WORKDIR /app
COPY constraints.txt setup.cfg pyproject.toml README.md ./
COPY stream stream
COPY dashboard dashboard
COPY alerting alerting
COPY geo geo
COPY config config
COPY orderradar orderradar
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system orderradar
USER orderradar
EXPOSE 8080
CMD ["orderradar", "worker"]
