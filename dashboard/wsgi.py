import os

from django.core.wsgi import get_wsgi_application

from imagestore.hijack import wsgi_hand_over

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# Docker's attach and exec (and WebSockets) take their connection over: imagestore/hijack.py.
application = wsgi_hand_over(get_wsgi_application())
