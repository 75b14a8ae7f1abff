"""Geography: regions, H3 cells, coordinate systems, geofences and disruption zones.

Modules (import what you need; this package imports nothing itself, so ``import geo`` stays cheap):

- ``geo.coords``: GCJ-02 / BD-09 <-> WGS-84 (pure; scalar and NumPy variants).
- ``geo.regions``: province (China) or country of a position, from ``geo/data``.
- ``geo.cells``: H3 cells at a few resolutions for heatmaps.
- ``geo.distance``: haversine distance in metres.
- ``geo.fence_config``: the ``config/geofences.yaml`` model.
- ``geo.fence_index``: ``Fence`` and the vectorised ``GeofenceIndex``.
- ``geo.fence_files``: reading fence layers (GeoJSON, Shapefile, GeoPackage) into an index.
- ``geo.fence_registry``: hot reload of the index when its files change.
- ``geo.fence_tracker``: enter / dwell / exit / overstay events and hub-arrival decisions (pure).
- ``geo.fence_shapes``: metric circles (e.g. 500 m around a delivery stop).
- ``geo.disruptions``: disruption zones, the SKUs they affect, and the book of active zones (pure).
"""
