import os

from django.core.wsgi import get_wsgi_application

from imagestore.handover import HandOverApplication

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# The browser terminal's WebSocket takes its request's socket: imagestore/handover.py.
application = HandOverApplication(get_wsgi_application())
