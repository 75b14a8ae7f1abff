// The war-room's plotly.js: only the trace types it draws, built from the npm packages that
// `npm ci` installs (package-lock.json), never downloaded at run time. Writes two bundles into
// ../assets/vendor/ (git-ignored); the Dash app includes the one its map backdrop needs and
// dcc.Graph uses that `window.Plotly` instead of loading the full 4.7 MB plotly.min.js.
// A panel drawing a new trace type adds it here (an unregistered type draws nothing).
'use strict';

const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const OUT = path.resolve(__dirname, '..', 'assets', 'vendor');

// scatter comes with plotly.js/lib/core.
const CHARTS = ['bar', 'heatmap'];
const BUNDLES = {
    // Shipped boundaries on a plotly `geo` subplot (no tile server).
    'plotly-warroom-geo.min.js': [...CHARTS, 'scattergeo', 'choropleth'],
    // Raster tiles on a MapLibre `map` subplot (ORDERRADAR_MAP_TILE_URL set).
    'plotly-warroom-map.min.js': [...CHARTS, 'scattergeo', 'choropleth', 'scattermap', 'choroplethmap'],
};

// MapLibre's stylesheet, injected when the map subplot first registers (as plotly's own build does).
const injectCss = {
    name: 'inject-css',
    setup(build) {
        build.onLoad({ filter: /\.css$/ }, (args) => ({
            loader: 'js',
            contents: 'var s = document.createElement("style"); s.textContent = '
                + JSON.stringify(fs.readFileSync(args.path, 'utf8')) + '; document.head.appendChild(s);',
        }));
    },
};

async function main() {
    fs.mkdirSync(OUT, { recursive: true });
    for (const [name, traces] of Object.entries(BUNDLES)) {
        const contents = "var Plotly = require('plotly.js/lib/core');\nPlotly.register(["
            + traces.map((t) => `require('plotly.js/lib/${t}')`).join(', ') + ']);\nmodule.exports = Plotly;\n';
        await esbuild.build({
            stdin: { contents, resolveDir: ROOT, sourcefile: name },
            outfile: path.join(OUT, name),
            bundle: true,
            minify: true,
            format: 'iife',
            globalName: 'Plotly',
            target: 'es2016',
            legalComments: 'none',
            alias: { regl: '@plotly/regl' },
            define: { global: 'window', 'define.amd': 'false' },
            plugins: [injectCss],
            logLevel: 'warning',
        });
        console.log(`built ${path.relative(ROOT, path.join(OUT, name))} (${traces.join(', ')})`);
    }
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
