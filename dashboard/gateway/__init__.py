"""The web gateway: ingest API, staff APIs, live WebSockets and customer access.

A Starlette app (served by uvicorn, ``orderradar web``) that is stateless across instances:
each instance consumes the update topics itself and serves its own clients. Build it with
:func:`dashboard.gateway.app.create_app`; mount the war-room and tracking page through its
``extra_routes`` / ``mounts`` arguments.
"""
