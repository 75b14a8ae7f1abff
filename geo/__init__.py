"""Geography: regions, H3 cells, coordinate systems, geofences and disruption zones."""
