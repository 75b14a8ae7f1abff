"""The war-room: a Dash app showing the national picture live, mounted in the web gateway.

Mount it with :func:`dashboard.warroom.mount.warroom_mount`; the app itself is built by
:func:`dashboard.warroom.app.create_app`. Panels live in :mod:`dashboard.warroom.panels`,
the map in :mod:`dashboard.warroom.map_figures`, the other charts in
:mod:`dashboard.warroom.charts` (both styled by :mod:`dashboard.warroom.theme`),
history queries in :mod:`dashboard.warroom.history`.
"""
