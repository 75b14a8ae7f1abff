# The war-room's partial plotly.js bundles, built from the npm packages pinned by
# package-lock.json (as `make web-assets` does); only the built files reach the runtime image.
FROM node:20-slim AS web-assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
COPY dashboard/warroom/bundle dashboard/warroom/bundle
RUN node dashboard/warroom/bundle/build.js

FROM python:3.11-slim
WORKDIR /app
COPY constraints.txt setup.cfg pyproject.toml README.md ./
COPY stream stream
COPY dashboard dashboard
COPY --from=web-assets /build/dashboard/warroom/assets/vendor dashboard/warroom/assets/vendor
COPY alerting alerting
COPY geo geo
COPY config config
COPY orderradar orderradar
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system orderradar
USER orderradar
EXPOSE 8080
CMD ["orderradar", "worker"]
