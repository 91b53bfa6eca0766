"""The browser pages, an app of their own beside the project package (``dashboard/``: settings,
URLs, Celery, WSGI), as healthchecks keeps ``hc/front/`` apart from ``hc/``.

- ``views.py``: one function per page; each reads a form, calls one service
  (imagestore/services), and renders. No operation logic lives here.
- ``forms.py``: the Django forms the pages read; a service's error lands beside the field it
  is about (``ServiceError.field``) through ``add_service_error``.
- ``urls.py``: the pages' URLs, named ``ui-*``, included at the site's root.
- ``terminal.py``: a container's terminal, a WebSocket served by the same gunicorn.
- ``templates/ui/``, ``static/ui/``: the pages' templates and their own scripts and styles.
"""
