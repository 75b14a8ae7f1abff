"""The customer tracking page: ``/t/{token}``, one order, live, on any phone.

Static HTML, a small vanilla script and an inline-SVG map (province outlines from
``geo/data``, optional raster tiles), served by the gateway itself; the live part is the
gateway's ``/ws/track``. Mount it with :func:`dashboard.tracking.page.tracking_routes`::

    app = create_app(settings, gateway=gateway,
                     extra_routes=tracking_routes(gateway.tracking_token_valid))
"""
