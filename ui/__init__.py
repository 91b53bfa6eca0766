"""The browser pages, an app of their own beside the project package (``dashboard/``: settings,
URLs, Celery, WSGI), as healthchecks keeps ``hc/front/`` apart from ``hc/``.

- ``views.py``: one function per page; each reads a form, calls one service
  (imagestore/services), and renders. No operation logic lives here.
- ``forms.py``: the Django forms the pages read (``StyledForm`` gives Bootstrap's classes); a
  service's error lands beside the field it is about (``ServiceError.field``) through
  ``add_service_error``.
- ``urls.py``: the pages' URLs, named ``ui-*``, included at the site's root.
- ``navigation.py``: the sidebar's sections.
- ``terminal.py``: a container's terminal, a WebSocket served by the same gunicorn.
- ``templatetags/ui.py``: state colours and labels, size bars (``percent``), ``{% query %}``.
- ``templates/ui/``, ``static/ui/``: the pages' templates, their script (``app.js``) and styles.
  The design system is Bootstrap 5.3 with Bootstrap Icons, htmx for partial updates, Chart.js
  for charts, all vendored in ``static/vendor/`` (see its README).

How to add a page
-----------------
1. A view in ``views.py`` (``@login_required``; changes call ``_operator_only(request)`` first),
   a form in ``forms.py`` (subclass ``StyledForm``), a URL in ``urls.py`` named ``ui-<thing>``.
   A URL name that starts like a sidebar section's (``ui-image-files`` -> Images) lights that
   section; a new section is one ``Section`` in ``navigation.py``.
2. A template ``templates/ui/<thing>.html``::

       {% extends "ui/base.html" %}
       {% load i18n ui %}
       {% block title %}{% translate "Things" %}{% endblock %}
       {% block breadcrumbs %}
         <li class="breadcrumb-item active" aria-current="page">{% translate "Things" %}</li>
       {% endblock %}
       {% block content %}<h1 class="h3 mb-3">{% translate "Things" %}</h1> ... {% endblock %}

   Cards (``card``), tables (``table table-hover align-middle`` inside ``card`` >
   ``table-responsive``, a ``<caption class="visually-hidden">``, ``data-keynav`` for arrow
   keys), state badges (``{{ job.state|job_colour }}``, ``ui/_container_state.html``), an
   empty state (``card-body empty-state``: an icon, a sentence, the next step as a link),
   form fields (``{% include "ui/_field.html" %}``), ``ui/_pagination.html``, dialogs
   (Bootstrap's ``modal``; ``data-open-on-load`` opens one the server asked for).
3. Every string through ``{% translate %}``/``{% blocktranslate %}`` or ``gettext``; the
   Chinese catalogue is ``locale/zh_Hans/LC_MESSAGES/django.po`` (``manage.py makemessages -l
   zh_Hans``). tests/ui/test_i18n.py renders every page of this URLconf in Chinese and fails on
   English left over, and tests/e2e/test_pages.py runs axe-core on it.
"""
