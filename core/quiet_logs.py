"""Expected refusals are not errors: no log record for a 403 or a 404 from `django.request`.

Django logs every 4xx answer on `django.request` as a warning, and a view's
PermissionDenied with its whole traceback (twice with DEBUG on: Django's own
console handler and the root's). A page not shared with you, or a change you
may not make, is the app working as meant; the server's access line (runserver,
or gunicorn's access log) already records the request with its status, on one
line. Other 4xx answers (a 400, a 405) are kept, without a traceback.
"""

import logging

QUIET_STATUSES = frozenset({403, 404})


class QuietRefusals(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status in QUIET_STATUSES:
            return False
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
